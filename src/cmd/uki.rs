//! `nodeimg uki inspect|build|set-cmdline`: Unified Kernel Images, read and assembled as
//! systemd 257's ukify does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use uki::{digest_all, normalize_cmdline, BuildError, HashAlg, HashInput, Pe, UkiBuilder};

use crate::fsutil::write_atomic;
use crate::{Global, Outcome};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Show a PE image's sections (with the digests of the bytes systemd-stub measures), its
    /// Authenticode digests as UEFI firmware computes them, and the systemd-stub version.
    Inspect {
        /// A UKI, a stub, a kernel or any PE/COFF image.
        file: PathBuf,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
        /// Compute only these digests (repeatable; default: sha1, sha256 and sha384 for
        /// Authenticode, sha256 and sha384 for sections).
        #[arg(long = "bank", value_name = "ALG", value_parser = ["sha1", "sha256", "sha384"])]
        banks: Vec<String>,
    },
    /// Assemble a UKI from a systemd-stub and a kernel, byte for byte as `ukify build`
    /// (systemd 257) does with the same inputs.
    Build(Box<BuildArgs>),
    /// Rebuild a UKI with another command line and everything else unchanged: the result is what
    /// `uki build` (and ukify) would have made with that command line.
    SetCmdline {
        /// The UKI to start from (unsigned, single-profile, without .pcrsig).
        uki: PathBuf,
        /// The new command line: text (whitespace runs folded, as ukify does) or @FILE (verbatim).
        #[arg(long, value_name = "TEXT|@FILE")]
        cmdline: String,
        /// Where to write the new UKI.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The systemd-stub EFI program (e.g. /usr/lib/systemd/boot/efi/linuxx64.efi.stub); must not
    /// be signed.
    #[arg(long, value_name = "STUB")]
    stub: PathBuf,
    /// The kernel's EFI image [.linux].
    #[arg(long, value_name = "KERNEL")]
    linux: PathBuf,
    /// An initrd [.initrd]; repeat to concatenate several (each padded to 4 bytes).
    #[arg(long, value_name = "FILE")]
    initrd: Vec<PathBuf>,
    /// The kernel command line [.cmdline]: text (whitespace runs folded) or @FILE (verbatim).
    #[arg(long, value_name = "TEXT|@FILE")]
    cmdline: String,
    /// os-release [.osrel]: text or @FILE. Unlike ukify, the build host's /etc/os-release is
    /// never used: without this option there is no .osrel section.
    #[arg(long, value_name = "TEXT|@FILE")]
    os_release: Option<String>,
    /// `uname -r` of the kernel [.uname]; default: read from the kernel image as ukify does.
    #[arg(long, value_name = "TEXT")]
    uname: Option<String>,
    /// An SBAT policy [.sbat, merged with the stub's and the kernel's]: text or @FILE;
    /// repeatable. Default: ukify's `uki,1` entry.
    #[arg(long, value_name = "TEXT|@FILE")]
    sbat: Vec<String>,
    /// A splash image [.splash] (BMP).
    #[arg(long, value_name = "FILE")]
    splash: Option<PathBuf>,
    /// A devicetree blob [.dtb].
    #[arg(long, value_name = "FILE")]
    devicetree: Option<PathBuf>,
    /// A microcode initrd [.ucode].
    #[arg(long, value_name = "FILE")]
    microcode: Option<PathBuf>,
    /// A public key (PEM) to seal secrets to [.pcrpkey].
    #[arg(long, value_name = "FILE")]
    pcrpkey: Option<PathBuf>,
    /// Where to write the UKI.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

pub fn run(cmd: Command, _global: Global) -> Result<Outcome> {
    match cmd {
        Command::Inspect { file, json, banks } => inspect(&file, json, &banks),
        Command::Build(args) => build(&args),
        Command::SetCmdline { uki, cmdline, output } => set_cmdline(&uki, &cmdline, &output),
    }
    .map(|()| Outcome::Ok)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    crate::fsutil::read_input(path, crate::fsutil::limits::IMAGE, "a UKI input")
}

/// ukify's `TEXT|@FILE`: the file's bytes (even if empty), the text, or nothing for an empty
/// text (ukify leaves the section out then).
fn text_or_file(value: &str) -> Result<Option<Vec<u8>>> {
    match value.strip_prefix('@') {
        Some(path) => read(Path::new(path)).map(Some),
        None => Ok(Some(value.as_bytes().to_vec()).filter(|t| !t.is_empty())),
    }
}

/// A command line argument: `@FILE` verbatim, text with whitespace runs folded as ukify folds it.
fn cmdline_arg(value: &str) -> Result<Option<Vec<u8>>> {
    match value.strip_prefix('@') {
        Some(_) => text_or_file(value),
        None => text_or_file(&normalize_cmdline(value)),
    }
}

fn build(a: &BuildArgs) -> Result<()> {
    let stub = read(&a.stub)?;
    let linux = read(&a.linux)?;
    let initrds = a.initrd.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let cmdline = cmdline_arg(&a.cmdline).context("--cmdline")?;
    let os_release = match &a.os_release {
        Some(v) => text_or_file(v).context("--os-release")?,
        None => None,
    };
    let mut sbat = Vec::new();
    for s in &a.sbat {
        let text = text_or_file(s).context("--sbat")?.unwrap_or_default();
        sbat.push(String::from_utf8(text).context("--sbat: not UTF-8 text")?);
    }
    let optional = |p: &Option<PathBuf>| p.as_deref().map(read).transpose();
    let (splash, devicetree, microcode, pcrpkey) =
        (optional(&a.splash)?, optional(&a.devicetree)?, optional(&a.microcode)?, optional(&a.pcrpkey)?);

    let mut b = UkiBuilder::new(&stub, &linux);
    for initrd in &initrds {
        b = b.initrd(initrd);
    }
    if let Some(c) = &cmdline {
        b = b.cmdline(c);
    }
    if let Some(o) = &os_release {
        b = b.os_release(o);
    }
    if let Some(s) = &splash {
        b = b.splash(s);
    }
    if let Some(d) = &devicetree {
        b = b.devicetree(d);
    }
    if let Some(m) = &microcode {
        b = b.microcode(m);
    }
    if let Some(p) = &pcrpkey {
        b = b.pcrpkey(p);
    }
    if let Some(u) = &a.uname {
        b = b.uname(u);
    }
    for s in sbat {
        b = b.sbat(s);
    }
    let image = b.build().map_err(|e| match e {
        BuildError::Stub(e) => anyhow!("{}: {e}", a.stub.display()),
        BuildError::Kernel(e) => anyhow!("{}: {e}", a.linux.display()),
        e => anyhow!("building a UKI from {} and {}: {e}", a.stub.display(), a.linux.display()),
    })?;
    // The builder takes placeholder kernels as ukify does; a UKI to boot needs a real one.
    uki::check_kernel(&linux).map_err(|e| anyhow!("--linux {}: {e}", a.linux.display()))?;
    write_atomic(&a.output, &image)
}

fn set_cmdline(path: &Path, cmdline: &str, output: &Path) -> Result<()> {
    let uki = read(path)?;
    let Some(cmdline) = cmdline_arg(cmdline).context("--cmdline")? else {
        bail!("--cmdline is empty; set-cmdline replaces the .cmdline section and cannot remove it");
    };
    let image = uki::set_cmdline(&uki, &cmdline).with_context(|| format!("{}", path.display()))?;
    write_atomic(output, &image)
}

/// Sections shown decoded, as ukify inspect shows them.
const TEXT_SECTIONS: [&str; 7] = [".cmdline", ".osrel", ".uname", ".sbat", ".pcrpkey", ".pcrsig", ".profile"];

/// Digests by algorithm name (`sha1`, `sha256`, …): only the banks asked for, in name order,
/// which is also the banks' order.
#[derive(Debug, Default, Serialize)]
#[serde(transparent)]
struct Digests(BTreeMap<&'static str, String>);

impl Digests {
    fn set(&mut self, alg: HashAlg, digest: &[u8]) {
        self.0.insert(alg.name(), hex::encode(digest));
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, d)| (*n, d.as_str()))
    }
}

#[derive(Debug, Serialize)]
struct Stub {
    /// The systemd-stub version (`257.13-1~deb13u1`).
    version: Option<String>,
    /// The whole LoaderInfo string (`systemd-stub 257.13-1~deb13u1`).
    loader_info: Option<String>,
}

#[derive(Debug, Serialize)]
struct SectionJson {
    name: String,
    virtual_address: u32,
    virtual_size: u32,
    raw_size: u32,
    offset: u32,
    characteristics: u32,
    /// Digests of the VirtualSize bytes the stub measures (zero-filled past the raw data).
    #[serde(flatten)]
    digests: Digests,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

#[derive(Debug, Serialize)]
struct Inspect {
    size: u64,
    pe32_plus: bool,
    machine: u16,
    signed: bool,
    authenticode: Digests,
    stub: Stub,
    sections: Vec<SectionJson>,
    /// For a UKI whose .linux is a PE image: the kernel's Authenticode digests (measured when
    /// the stub loads it).
    #[serde(skip_serializing_if = "Option::is_none")]
    linux_authenticode: Option<Digests>,
}

fn inspect(path: &Path, json: bool, banks: &[String]) -> Result<()> {
    let data = crate::fsutil::map_file(path, 4 << 30, "a PE image")?;
    let pe = Pe::parse(&data).with_context(|| format!("{}", path.display()))?;
    let kernel = pe.section(".linux").and_then(|s| Pe::parse(pe.section_file_bytes(s)).ok());
    let wanted = |alg: HashAlg| banks.is_empty() || banks.iter().any(|b| b == alg.name());
    let authenticode_algs: Vec<HashAlg> = uki::AUTHENTICODE_ALGS.into_iter().filter(|&a| wanted(a)).collect();
    let section_algs: Vec<HashAlg> = [HashAlg::Sha256, HashAlg::Sha384].into_iter().filter(|&a| wanted(a)).collect();

    // One parallel batch: the Authenticode digests, each section's, the inner kernel's.
    // Every job reads its bytes once from memory; the cores share the jobs.
    let authenticode = pe.authenticode_input();
    let measured: Vec<HashInput> = pe.sections().iter().map(|s| pe.section_measured(s)).collect();
    let kernel_input = kernel.as_ref().map(|k| k.authenticode_input());
    // (what: None = the UKI, Some(i) = section i, Some(usize::MAX) = the inner kernel)
    let mut jobs: Vec<(HashAlg, &HashInput)> = Vec::new();
    let mut owners: Vec<Option<usize>> = Vec::new();
    for &alg in &authenticode_algs {
        jobs.push((alg, &authenticode));
        owners.push(None);
    }
    for (i, m) in measured.iter().enumerate() {
        for &alg in &section_algs {
            jobs.push((alg, m));
            owners.push(Some(i));
        }
    }
    if let Some(k) = &kernel_input {
        for &alg in &authenticode_algs {
            jobs.push((alg, k));
            owners.push(Some(usize::MAX));
        }
    }
    let done = digest_all(&jobs);
    let mut uki_digests = Digests::default();
    let mut kernel_digests = Digests::default();
    let mut section_digests: Vec<Digests> = pe.sections().iter().map(|_| Digests::default()).collect();
    for (((alg, _), owner), digest) in jobs.iter().zip(&owners).zip(&done) {
        match owner {
            None => uki_digests.set(*alg, digest),
            Some(usize::MAX) => kernel_digests.set(*alg, digest),
            Some(i) => section_digests[*i].set(*alg, digest),
        }
    }

    let loader_info = uki::loader_info(&pe);
    let sections = pe
        .sections()
        .iter()
        .zip(section_digests)
        .map(|(s, digests)| SectionJson {
            name: s.name.clone(),
            virtual_address: s.virtual_address,
            virtual_size: s.virtual_size,
            raw_size: s.raw_size,
            offset: s.offset,
            characteristics: s.characteristics,
            digests,
            text: TEXT_SECTIONS.contains(&s.name.as_str()).then(|| section_text(pe.section_file_bytes(s))).flatten(),
        })
        .collect();
    let report = Inspect {
        size: data.len() as u64,
        pe32_plus: pe.is_pe32_plus(),
        machine: pe.coff().machine.get(),
        signed: pe.certificate_table().is_some(),
        authenticode: uki_digests,
        stub: Stub { version: loader_info.as_deref().and_then(uki::stub_version).map(str::to_owned), loader_info },
        sections,
        linux_authenticode: kernel_input.map(|_| kernel_digests),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_inspect(path, &report)?;
    }
    Ok(())
}

/// A text section decoded as ukify inspect does: trailing NULs dropped, inner NULs shown as `\0`.
fn section_text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(&bytes[..end]).ok().map(|s| s.replace('\0', "\\0"))
}

fn print_inspect(path: &Path, r: &Inspect) -> Result<()> {
    use crate::text::clean;
    let machine = match r.machine {
        0x8664 => "x86-64".to_owned(),
        0x14c => "i386".to_owned(),
        0xaa64 => "arm64".to_owned(),
        m => format!("machine {m:#x}"),
    };
    let format = if r.pe32_plus { "PE32+" } else { "PE32" };
    let signed = if r.signed { "signed" } else { "unsigned" };
    outln!("{}: {format} {machine}, {} bytes, {signed}", path.display(), r.size);
    outln!("stub: {}", clean(r.stub.loader_info.as_deref().unwrap_or("(no systemd-stub LoaderInfo)")));
    let print_digests = |title: &str, d: &Digests| -> Result<()> {
        outln!("{title}:");
        for (alg, digest) in d.iter() {
            outln!("  {alg:<7} {digest}");
        }
        Ok(())
    };
    print_digests("authenticode", &r.authenticode)?;
    if let Some(k) = &r.linux_authenticode {
        print_digests(".linux authenticode", k)?;
    }
    outln!("sections (digests of the VirtualSize bytes the stub measures):");
    outln!("  {:<9} {:>10} {:>10} {:>10} {:>10}", "name", "vaddr", "vsize", "rawsize", "offset");
    for s in &r.sections {
        outln!(
            "  {:<9} {:>#10x} {:>#10x} {:>#10x} {:>#10x}",
            clean(&s.name),
            s.virtual_address,
            s.virtual_size,
            s.raw_size,
            s.offset
        );
        for (alg, digest) in s.digests.iter() {
            outln!("    {alg:<7} {digest}");
        }
        if let Some(text) = &s.text {
            let mut lines = text.trim_end_matches('\n').lines();
            outln!("    text    {}", clean(lines.next().unwrap_or("")));
            for line in lines {
                outln!("            {}", clean(line));
            }
        }
    }
    Ok(())
}
