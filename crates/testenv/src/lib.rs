//! Test environments for the hardware providers, made on temporary paths and torn down on drop:
//! a SoftHSMv2 token ([`softhsm`]) for the PKCS #11 provider and a swtpm TPM 2.0 ([`swtpm`]) for
//! the TPM provider. Tests that need them fail with a message naming the missing package rather
//! than pass without running (`scripts/install-deps.sh --test` installs both).

pub mod softhsm;
pub mod swtpm;
