//! A swtpm TPM 2.0 simulator on a temporary path.
