//! Unified Kernel Images: read them, hash them as firmware does, and assemble them as ukify does.
//!
//! Every vTPM and TDX measurement of a node image starts from its Unified Kernel Image (UKI): a
//! systemd-stub EFI program with the kernel, initrd, command line and os-release appended as PE
//! sections. UEFI firmware measures the UKI's *Authenticode digest* into PCR 4 (and TDX's
//! RTMR1); systemd-stub then measures each of its known sections into PCR 11, and the kernel it
//! loads from `.linux` is itself measured by its Authenticode digest. Predicting those values
//! before boot needs exactly two things from a UKI — the digest the firmware computes and the
//! bytes the stub measures — and this crate provides them:
//!
//! * [`Pe::parse`] validates a PE/COFF image (every offset and size checked against the file,
//!   with errors that say what is wrong and where) and lists its [`Section`]s;
//! * [`Pe::authenticode`] hashes the image the way edk2's `Tcg2MeasurePeImage` does, so a signed
//!   image and its unsigned original give one digest;
//! * [`Pe::section_measured`] gives a section's bytes as the loaded image holds them
//!   (VirtualSize bytes, zero-filled past the raw data), which is what systemd-stub measures;
//! * [`Uki`] finds the stub version and the sections PCR 11 covers, in the stub's order.
//!
//! Images for several platforms differ only in their command line. [`UkiBuilder`] assembles a
//! UKI byte for byte as systemd 257's `ukify build` does, and [`set_cmdline`] swaps the command
//! line of a finished UKI, so one root build serves every platform without re-running ukify.
//!
//! The crate is pure: bytes in, typed values out. It never prints, never touches the file
//! system and never runs a process; hashing of independent digests runs in parallel
//! ([`digest_all`]).

pub mod build;
pub mod hash;
pub mod pe;
pub mod uki;

pub use build::{check_kernel, kernel_release, normalize_cmdline, set_cmdline, BuildError, UkiBuilder, DEFAULT_SBAT};
pub use hash::{digest_all, HashAlg, HashInput, AUTHENTICODE_ALGS};
pub use pe::{Pe, PeError, Section};
pub use uki::{loader_info, stub_version, MeasuredSection, Uki, UkiError, UNIFIED_SECTIONS};
