//! A SoftHSMv2 token on a temporary path.
