//! `nodeimg measure snp|tdx|pcrs`: what the hardware and the vTPM will report, computed from the
//! firmware and the image.
//!
//! `snp` takes sev-snp-measure's flags and prints what it prints (the digest alone, hex or
//! base64); `tdx` prints MRTD, and with `--uki` also RTMR1 and RTMR2; `pcrs` predicts the vTPM
//! PCRs of a UKI boot (see `measure_boot`). With `--json` they add their inputs and an account
//! of how each value was reached.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use digest_alg::{Digest, Sha256};
use measure::snp::{self, hashes, KernelHashes, SnpFirmware, SnpLaunch, Vmm};
use measure::tdx::{self, PageAddOrder, TdvfMetadata};
use serde::Serialize;

use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// AMD SEV-SNP launch digest (MEASUREMENT), as sev-snp-measure 0.0.13 computes it.
    Snp(SnpArgs),
    /// Intel TDX MRTD from the firmware's TDVF metadata; with --uki also RTMR1 and RTMR2.
    Tdx(TdxArgs),
    /// vTPM PCRs 4, 7, 9, 11, 12, 13 (and 5) of booting a UKI: OVMF, systemd-stub 257, Linux.
    Pcrs(crate::cmd::measure_boot::PcrsArgs),
}

/// `--mode` values: the SNP modes of sev-snp-measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnpMode {
    /// The full launch digest.
    #[value(name = "snp")]
    Snp,
    /// Only the digest of the firmware pages, to pass later as --snp-ovmf-hash.
    #[value(name = "snp:ovmf-hash")]
    OvmfHash,
}

/// How to print a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lowercase hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("vcpu").args(["vcpu_type", "vcpu_sig", "vcpu_family"])))]
pub struct SnpArgs {
    /// What to compute.
    #[arg(long, value_enum, default_value = "snp")]
    mode: SnpMode,
    /// The OVMF image the guest boots (a single .fd with the SEV metadata).
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,
    /// Number of vCPUs (one VMSA page each). Required in snp mode.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    vcpus: Option<u32>,
    /// vCPU type, i.e. QEMU's -cpu model (EPYC, EPYC-v1…v4, EPYC-IBPB, EPYC-Rome[-v1…v3],
    /// EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin; case-insensitive).
    #[arg(long, value_name = "NAME", value_parser = parse_vcpu_type)]
    vcpu_type: Option<u32>,
    /// vCPU signature (CPUID 1 EAX), e.g. 0xa00f11 or decimal.
    #[arg(long, value_name = "VALUE", value_parser = parse_u32)]
    vcpu_sig: Option<u32>,
    /// vCPU family (with --vcpu-model and --vcpu-stepping).
    #[arg(long, value_name = "FAMILY", value_parser = parse_u32, requires_all = ["vcpu_model", "vcpu_stepping"])]
    vcpu_family: Option<u32>,
    /// vCPU model.
    #[arg(long, value_name = "MODEL", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_model: Option<u32>,
    /// vCPU stepping.
    #[arg(long, value_name = "STEPPING", value_parser = parse_u32, requires = "vcpu_family")]
    vcpu_stepping: Option<u32>,
    /// The VMM that launches the guest: QEMU, ec2 or gce (case-insensitive). QEMU needs a vCPU
    /// type or signature; EC2 and GCE ignore it.
    #[arg(long, value_name = "VMMTYPE", default_value = "QEMU", value_parser = parse_vmm)]
    vmm_type: Vmm,
    /// SEV_FEATURES of every vCPU (bit 0 SNPActive, bit 5 DebugSwap, …): 0x1 is SNP alone.
    #[arg(long, value_name = "VALUE", default_value = "0x1", value_parser = parse_u64)]
    guest_features: u64,
    /// Kernel for measured direct boot (needs an AmdSev OVMF with a kernel-hashes page).
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// Initrd for measured direct boot.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// Kernel command line for measured direct boot.
    #[arg(long, value_name = "CMDLINE", requires = "kernel")]
    append: Option<String>,
    /// Start from this precomputed firmware digest (from --mode snp:ovmf-hash) instead of
    /// hashing the firmware pages.
    #[arg(long, value_name = "HEX", value_parser = parse_digest)]
    snp_ovmf_hash: Option<[u8; 48]>,
    /// How to print the launch digest (snp:ovmf-hash is always hex, as sev-snp-measure does).
    #[arg(long, value_enum, default_value = "hex")]
    output_format: OutputFormat,
    /// Print a JSON object with the inputs and the page-by-page account.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct TdxArgs {
    /// The OVMF (TDVF) image the TD boots.
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,
    /// Order of TDH.MEM.PAGE.ADD and TDH.MR.EXTEND: single-pass (per page; upstream KVM and
    /// QEMU, Google Cloud) or two-pass (per section; older out-of-tree QEMU/KVM TDX patches).
    #[arg(long, value_enum, default_value = "single-pass")]
    page_add_order: Order,
    /// The UKI the TD boots from disk: also predict RTMR1 (with --disk) and RTMR2 (a TD
    /// without vTPM; RTMR0 is the platform's).
    #[arg(long, value_name = "UKI")]
    uki: Option<PathBuf>,
    #[command(flatten)]
    boot: crate::cmd::measure_boot::BootOptions,
    /// With --uki: write the predicted RTMR1/RTMR2 events as a CC event log (CCEL).
    #[arg(long, value_name = "FILE", requires = "uki")]
    eventlog_out: Option<PathBuf>,
    /// Print a JSON object with the section-by-section account.
    #[arg(long)]
    json: bool,
}

/// `--page-add-order` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    /// Per page: add, then extend.
    SinglePass,
    /// Per section: add all pages, then extend them.
    TwoPass,
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (digits, radix) = match t.get(..2) {
        Some("0x" | "0X") => (&t[2..], 16),
        Some("0o" | "0O") => (&t[2..], 8),
        Some("0b" | "0B") => (&t[2..], 2),
        _ => (t.as_str(), 10),
    };
    u64::from_str_radix(digits, radix).map_err(|e| format!("'{s}' is not a number (decimal or 0x hex): {e}"))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let n = parse_u64(s)?;
    u32::try_from(n).map_err(|_| format!("'{s}' does not fit in 32 bits"))
}

fn parse_vcpu_type(s: &str) -> Result<u32, String> {
    snp::vcpu_type_sig(s).ok_or_else(|| {
        let names: Vec<_> = snp::VCPU_TYPES.iter().map(|t| t.0).collect();
        format!("unknown vCPU type '{s}' (known: {})", names.join(", "))
    })
}

fn parse_vmm(s: &str) -> Result<Vmm, String> {
    s.parse()
}

fn parse_digest(s: &str) -> Result<[u8; 48], String> {
    let b = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
    b.try_into().map_err(|b: Vec<u8>| format!("a SHA-384 digest is 48 bytes (96 hex digits), got {}", b.len()))
}

pub fn run(cmd: Command, global: Global) -> Result<Outcome> {
    match cmd {
        Command::Snp(a) => run_snp(a, global),
        Command::Tdx(a) => run_tdx(a, global),
        Command::Pcrs(a) => crate::cmd::measure_boot::run_pcrs(a, global),
    }
}

/// The firmware file, as `--json` describes it.
#[derive(Debug, Serialize)]
struct FirmwareInfo {
    path: PathBuf,
    size: usize,
    sha256: String,
}

impl FirmwareInfo {
    fn new(path: &Path, bytes: &[u8]) -> Self {
        FirmwareInfo { path: path.to_path_buf(), size: bytes.len(), sha256: hex::encode(Sha256::digest(bytes)) }
    }
}

/// Firmware images are a few MiB; anything beyond this is the wrong file, not worth reading.
const MAX_FIRMWARE: u64 = 256 << 20;

/// Maps a firmware image (see [`crate::fsutil::map_file`]).
pub(crate) fn map_firmware(path: &Path) -> Result<crate::fsutil::MappedFile> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if len > MAX_FIRMWARE {
        bail!(
            "{} is {len} bytes, not a firmware image (OVMF builds are a few MiB; the limit here is {} MiB)",
            path.display(),
            MAX_FIRMWARE >> 20
        );
    }
    crate::fsutil::map_file(path, MAX_FIRMWARE, "a firmware image")
}

/// Reads a firmware image into memory.
pub(crate) fn read_firmware(path: &Path) -> Result<Vec<u8>> {
    Ok(map_firmware(path)?.to_vec())
}

fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let f = crate::fsutil::open_regular(path, "a kernel or initrd")?;
    hashes::sha256_reader(f).with_context(|| format!("reading {}", path.display()))
}

#[derive(Debug, Serialize)]
struct DirectBoot {
    kernel: PathBuf,
    kernel_sha256: String,
    initrd: Option<PathBuf>,
    initrd_sha256: String,
    append: Option<String>,
    cmdline_sha256: String,
}

#[derive(Debug, Serialize)]
struct SnpReport<'a> {
    mode: &'static str,
    firmware: FirmwareInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    vcpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vcpu_sig: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vmm_type: Option<Vmm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guest_features: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direct_boot: Option<DirectBoot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snp_ovmf_hash: Option<String>,
    /// The value as printed without --json (hex or base64).
    measurement: String,
    /// The same value in hex.
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<&'a [snp::PageRun]>,
    notes: Vec<String>,
}

fn print_notes(notes: &[String], global: Global) {
    if !global.quiet {
        for n in notes {
            eprintln!("note: {n}");
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v).context("serializing JSON")?);
    Ok(())
}

fn run_snp(a: SnpArgs, global: Global) -> Result<Outcome> {
    let image = map_firmware(&a.ovmf)?;
    let ctx = || a.ovmf.display().to_string();
    let fw = SnpFirmware::parse(&image).with_context(ctx)?;
    let notes = fw.notes();
    print_notes(&notes, global);

    if a.mode == SnpMode::OvmfHash {
        let d = hex::encode(fw.ovmf_hash());
        if a.json {
            print_json(&SnpReport {
                mode: "snp:ovmf-hash",
                firmware: FirmwareInfo::new(&a.ovmf, &image),
                vcpus: None,
                vcpu_sig: None,
                vmm_type: None,
                guest_features: None,
                direct_boot: None,
                snp_ovmf_hash: None,
                measurement: d.clone(),
                digest: d,
                pages: None,
                notes,
            })?;
        } else {
            outln!("{d}");
        }
        return Ok(Outcome::Ok);
    }

    let Some(vcpus) = a.vcpus else { bail!("missing --vcpus N in guest mode 'snp'") };
    let vcpu_sig = match (a.vcpu_family, a.vcpu_sig, a.vcpu_type) {
        (Some(f), ..) => Some(snp::cpu_sig(f, a.vcpu_model.unwrap_or(0), a.vcpu_stepping.unwrap_or(0))),
        (None, Some(s), _) => Some(s),
        (None, None, t) => t,
    };
    if vcpu_sig.is_none() && a.vmm_type == Vmm::Qemu {
        bail!("missing --vcpu-type, --vcpu-sig or --vcpu-family in guest mode 'snp' with --vmm-type QEMU");
    }
    let direct_boot = match &a.kernel {
        None => None,
        Some(k) => {
            let kernel = sha256_file(k)?;
            let initrd = match &a.initrd {
                Some(i) => sha256_file(i)?,
                None => Sha256::digest(b"").into(),
            };
            let cmdline = hashes::cmdline_digest(a.append.as_deref());
            Some((KernelHashes { kernel, initrd, cmdline }, k.clone()))
        }
    };
    let launch = SnpLaunch {
        vcpus,
        vcpu_sig,
        vmm: a.vmm_type,
        guest_features: a.guest_features,
        kernel: direct_boot.as_ref().map(|(h, _)| *h),
        ovmf_hash: a.snp_ovmf_hash,
    };
    let ld = snp::launch_digest(&fw, &launch).with_context(ctx)?;
    let measurement = match a.output_format {
        OutputFormat::Hex => hex::encode(ld.digest),
        OutputFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(ld.digest),
    };
    if a.json {
        print_json(&SnpReport {
            mode: "snp",
            firmware: FirmwareInfo::new(&a.ovmf, &image),
            vcpus: Some(vcpus),
            vcpu_sig: vcpu_sig.map(|s| format!("{s:#x}")),
            vmm_type: Some(a.vmm_type),
            guest_features: Some(format!("{:#x}", a.guest_features)),
            direct_boot: direct_boot.map(|(h, kernel)| DirectBoot {
                kernel,
                kernel_sha256: hex::encode(h.kernel),
                initrd: a.initrd.clone(),
                initrd_sha256: hex::encode(h.initrd),
                append: a.append.clone(),
                cmdline_sha256: hex::encode(h.cmdline),
            }),
            snp_ovmf_hash: a.snp_ovmf_hash.map(hex::encode),
            measurement,
            digest: hex::encode(ld.digest),
            pages: Some(&ld.pages),
            notes,
        })?;
    } else {
        outln!("{measurement}");
    }
    Ok(Outcome::Ok)
}

#[derive(Serialize)]
struct TdxReport {
    firmware: FirmwareInfo,
    #[serde(flatten)]
    mrtd: tdx::Mrtd,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtmrs: Option<crate::cmd::measure_boot::Rtmrs>,
    notes: Vec<String>,
}

fn run_tdx(a: TdxArgs, global: Global) -> Result<Outcome> {
    let image = map_firmware(&a.ovmf)?;
    let md = TdvfMetadata::parse(&image).with_context(|| a.ovmf.display().to_string())?;
    let notes = md.notes();
    print_notes(&notes, global);
    let order = match a.page_add_order {
        Order::SinglePass => PageAddOrder::SinglePass,
        Order::TwoPass => PageAddOrder::TwoPass,
    };
    let m = tdx::mrtd(&image, &md, order);
    let rtmrs = match &a.uki {
        Some(uki) => Some(crate::cmd::measure_boot::rtmrs(uki, &a.boot, a.eventlog_out.as_deref())?),
        None if crate::cmd::measure_boot::any_boot_option(&a.boot) => {
            bail!("--firmware-vars, --secure-boot, --disk and the other boot options describe a UKI boot: give --uki")
        }
        None => None,
    };
    if let Some(r) = &rtmrs {
        print_notes(r.notes(), global);
    }
    if a.json {
        print_json(&TdxReport { firmware: FirmwareInfo::new(&a.ovmf, &image), mrtd: m, rtmrs, notes })?;
    } else if let Some(r) = &rtmrs {
        out!("mrtd={}\n{}", hex::encode(m.digest), r.lines());
    } else {
        outln!("{}", hex::encode(m.digest));
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_python_int_base_0() {
        assert_eq!(parse_u64("0x21"), Ok(0x21));
        assert_eq!(parse_u64("33"), Ok(33));
        assert_eq!(parse_u64("0b101"), Ok(5));
        assert_eq!(parse_u64("1_000"), Ok(1000));
        assert!(parse_u64("0xzz").is_err());
        assert!(parse_u32("0x100000000").is_err());
        assert!(parse_digest("00").is_err());
    }
}
