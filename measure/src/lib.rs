//! Measurements a confidential VM reports, computed before it ever boots.
//!
//! A verifier admits a node when the values its hardware and vTPM report equal reference values
//! published for the image. This crate computes those values from the image's bytes and the
//! platform's firmware: it never runs anything and never prints. Each module follows one
//! specification and cites it. What a running node reports, and the comparison of the two, is
//! the `attest` crate's.

pub mod boot;
pub mod fv;
pub mod ovmf;
pub mod snp;
pub mod tdx;
pub mod uefi_vars;
