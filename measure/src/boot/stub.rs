//! What systemd-stub 257 and the Linux EFI stub measure, and what they hand to the kernel.
//!
//! Follows `src/boot/stub.c` (`run`, `find_sections`, `measure_sections`,
//! `settle_command_line`, `generate_sidecar_initrds`, `generate_embedded_initrds`,
//! `combine_initrds`), `src/boot/pe.c` (profile ranges, first match wins), `src/boot/util.c`
//! (`mangle_stub_cmdline`), `src/boot/efi-string.c` (`xstrn8_to_16`) and `src/boot/measure.c`
//! of systemd v257, and for PCR 9 `drivers/firmware/efi/libstub/efi-stub-helper.c` of Linux 6.12
//! (`efi_measure_tagged_event`, called for the LoadOptions and the initrd).

use std::borrow::Cow;

use uki::{Pe, Section, UNIFIED_SECTIONS};

use super::cpio;
use super::{BootError, Pending, SidecarFile, Source, Subject};
use eventlog::EventType;

/// PCR 9: what the Linux EFI stub measures (`TPM_PCR_INDEX_KERNEL_INITRD`).
pub(crate) const PCR_LINUX: u32 = 9;
/// PCR 11: the UKI's sections (systemd `TPM2_PCR_KERNEL_BOOT`).
pub(crate) const PCR_KERNEL_BOOT: u32 = 11;
/// PCR 12: command lines, credentials, configuration extensions (`TPM2_PCR_KERNEL_CONFIG`).
pub(crate) const PCR_KERNEL_CONFIG: u32 = 12;
/// PCR 13: system extensions (`TPM2_PCR_SYSEXTS`).
pub(crate) const PCR_SYSEXTS: u32 = 13;

/// Linux `LOAD_OPTIONS_EVENT_TAG_ID` (`drivers/firmware/efi/libstub/efistub.h`).
pub(crate) const TAG_LOAD_OPTIONS: u32 = 0x8f3b_22ed;
/// Linux `INITRD_EVENT_TAG_ID`.
pub(crate) const TAG_INITRD: u32 = 0x8f3b_22ec;
/// systemd `UKI_PROFILE_EVENT_TAG_ID` (`src/fundamental/tpm2-pcr.h`).
pub(crate) const TAG_UKI_PROFILE: u32 = 0x13ae_d6db;

/// Indices into [`UNIFIED_SECTIONS`] (systemd's `UnifiedSection` enum).
const LINUX: usize = 0;
const OSREL: usize = 1;
const CMDLINE: usize = 2;
const INITRD: usize = 3;
const UCODE: usize = 4;
const PCRSIG: usize = 9;
const PCRPKEY: usize = 10;
const PROFILE: usize = 11;
const DTBAUTO: usize = 12;
const _: () = assert!(UNIFIED_SECTIONS.len() == 14);

/// UTF-16LE with a NUL: how systemd writes event descriptions and LoadOptions.
pub(crate) fn u16z(units: &[u16]) -> Vec<u8> {
    units.iter().chain(&[0]).flat_map(|u| u.to_le_bytes()).collect()
}

/// `TCG_PCClientTaggedEvent` (TCG PC Client PFP 1.05): id, size, data.
pub(crate) fn tagged(id: u32, data: &[u8]) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    b
}

/// `xstrn8_to_16`: UTF-8 to UTF-16 as the stub converts `.cmdline`: stops at the first NUL,
/// drops characters outside the BMP and undecodable sequences (skipping the bytes their lead
/// byte claims).
pub(crate) fn xstrn8_to_16(s: &[u8]) -> Vec<u16> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() && s[i] != 0 {
        let b = s[i];
        let n = s.len() - i;
        let (len, mut c): (usize, u32) = match b {
            _ if b & 0x80 == 0 => (1, u32::from(b)),
            _ if b & 0xe0 == 0xc0 => (2, u32::from(b & 0x1f)),
            _ if b & 0xf0 == 0xe0 => (3, u32::from(b & 0x0f)),
            _ if b & 0xf8 == 0xf0 => (4, u32::from(b & 0x07)),
            _ if b & 0xfc == 0xf8 => (5, u32::from(b & 0x03)),
            _ if b & 0xfe == 0xfc => (6, u32::from(b & 0x01)),
            _ => (1, u32::MAX),
        };
        if c != u32::MAX && len > 1 {
            if len > n {
                c = u32::MAX;
            } else {
                for k in 1..len {
                    if s[i + k] & 0xc0 != 0x80 {
                        c = u32::MAX;
                        break;
                    }
                    c = (c << 6) | u32::from(s[i + k] & 0x3f);
                }
            }
        }
        if c <= 0xd7ff || (0xe000..=0xffff).contains(&c) {
            out.push(c as u16);
        }
        i = i.saturating_add(len);
    }
    out
}

/// `mangle_stub_cmdline`: drop leading control characters and spaces, turn inner ones into
/// spaces, drop trailing ones.
pub(crate) fn mangle_cmdline(s: &[u16]) -> Vec<u16> {
    let ws = |c: u16| c <= 0x20 || c == 0x7f;
    let start = s.iter().position(|c| !ws(*c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !ws(*c)).map_or(start, |e| e + 1);
    s[start..end.max(start)].iter().map(|&c| if ws(c) { u16::from(b' ') } else { c }).collect()
}

/// `parse_profile_from_cmdline`: a leading `@N` (decimal, at most `u32::MAX`) followed by one
/// space or the end selects profile N and is removed; anything else selects profile 0 and
/// leaves the command line alone.
fn parse_profile(cmdline: &[u16]) -> (u32, &[u16]) {
    let Some((&at, rest)) = cmdline.split_first() else { return (0, cmdline) };
    if at != u16::from(b'@') {
        return (0, cmdline);
    }
    let digits = rest.iter().take_while(|c| (u16::from(b'0')..=u16::from(b'9')).contains(c)).count();
    if digits == 0 {
        return (0, cmdline);
    }
    let mut n: u64 = 0;
    for &c in &rest[..digits] {
        match n.checked_mul(10).and_then(|v| v.checked_add(u64::from(c - u16::from(b'0')))) {
            Some(v) => n = v,
            None => return (0, cmdline),
        }
    }
    let Ok(n) = u32::try_from(n) else { return (0, cmdline) };
    match rest.get(digits) {
        None => (n, &rest[digits..]),
        Some(&c) if c == u16::from(b' ') => (n, &rest[digits + 1..]),
        Some(_) => (0, cmdline),
    }
}

/// The stub's view of the UKI's sections: for each unified section, the section table entry
/// systemd-stub uses, if it is set (found with a non-zero VirtualSize).
pub(crate) struct Sections {
    pub(crate) entries: Vec<Option<Section>>,
}

impl Sections {
    pub(crate) fn get(&self, index: usize) -> Option<&Section> {
        self.entries[index].as_ref().filter(|s| s.virtual_size != 0)
    }
}

/// The most zero fill past a section's data (VirtualSize beyond SizeOfRawData) the model takes.
const MAX_ZERO_FILL: u64 = 64 << 20;

/// `find_sections`: the base profile (sections before the first `.profile`), overridden by
/// the sections of profile `profile` (from its `.profile` to the next). First match wins.
pub(crate) fn find_sections(pe: &Pe<'_>, profile: u32) -> Result<Sections, BootError> {
    let table = pe.sections();
    let locate = |range: &[Section], into: &mut Vec<Option<Section>>| {
        for (i, name) in UNIFIED_SECTIONS.iter().enumerate() {
            if let Some(s) = range.iter().find(|s| s.name == *name) {
                into[i] = Some(s.clone());
            }
        }
    };
    let mut entries = vec![None; UNIFIED_SECTIONS.len()];
    let first_profile = table.iter().position(|s| s.name == ".profile").unwrap_or(table.len());
    locate(&table[..first_profile], &mut entries);
    let starts: Vec<usize> = table.iter().enumerate().filter(|(_, s)| s.name == ".profile").map(|(i, _)| i).collect();
    match starts.get(profile as usize) {
        Some(&start) => {
            let end = starts.get(profile as usize + 1).copied().unwrap_or(table.len());
            locate(&table[start..end], &mut entries);
        }
        None if profile == 0 => {}
        None => return Err(BootError::NoSuchProfile { profile, profiles: starts.len() }),
    }
    // The firmware loads each section zero-filled up to its VirtualSize, and the stub measures
    // all of it; the model holds that fill in memory. Real UKIs fill a few KiB at most.
    for e in entries.iter().flatten() {
        let fill = pe.section_measured(e).zero_fill;
        if fill > MAX_ZERO_FILL {
            return Err(BootError::NotModeled {
                what: format!(
                    "section {} is {} bytes in memory but {fill} of them are zero fill past its data (at most \
                     {MAX_ZERO_FILL} are modeled)",
                    e.name, e.virtual_size
                ),
            });
        }
    }
    if entries[DTBAUTO].is_some() {
        return Err(BootError::NotModeled {
            what: "a .dtbauto section (the stub picks it by matching the machine's hardware IDs)".into(),
        });
    }
    let sections = Sections { entries };
    if sections.get(LINUX).is_none() {
        return Err(BootError::Uki(uki::UkiError::NoLinux));
    }
    Ok(sections)
}

/// A section's bytes in memory: VirtualSize bytes, zero-filled past the raw data.
fn section_bytes<'a>(pe: &Pe<'a>, s: &Section) -> Vec<Cow<'a, [u8]>> {
    let input = pe.section_measured(s);
    let mut parts: Vec<Cow<'a, [u8]>> = input.slices.into_iter().map(Cow::Borrowed).collect();
    if input.zero_fill > 0 {
        parts.push(Cow::Owned(vec![0; input.zero_fill as usize]));
    }
    parts
}

fn flatten(parts: &[Cow<'_, [u8]>]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// What the stub does with the inputs: its events and what it passes on to the kernel.
pub(crate) struct StubRun<'a> {
    /// Events the stub measures, in order.
    pub(crate) events: Vec<Pending<'a>>,
    /// The profile it booted.
    pub(crate) profile: u32,
    /// The LoadOptions of the kernel image (the final command line), if the stub sets any.
    pub(crate) cmdline: Option<Vec<u16>>,
    /// The initrd it serves through `LINUX_INITRD_MEDIA_GUID`, as pieces (empty: none).
    pub(crate) initrd: Vec<Cow<'a, [u8]>>,
    /// The `.linux` section it loads the kernel from (the selected profile's, if it has one).
    pub(crate) linux: Section,
}

/// What the stub finds around it: LoadOptions, files on the ESP, the platform.
pub(crate) struct StubEnv<'b> {
    pub(crate) load_options: Option<&'b str>,
    pub(crate) extra_d: &'b [SidecarFile],
    pub(crate) loader_credentials: &'b [SidecarFile],
    pub(crate) secure_boot: bool,
    pub(crate) confidential_vm: bool,
}

fn ends_with_no_case(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len() && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// `pack_cpio`'s directory scan: regular files, not dot-files, ASCII names of at most 255
/// characters, matching the suffix (case-insensitively) and not the excluded one, sorted by
/// UTF-16 code unit (`strcmp16`; for ASCII the byte order).
fn pick<'f>(files: &'f [SidecarFile], suffix: &str, exclude: Option<&str>) -> Vec<(&'f str, &'f [u8])> {
    let mut v: Vec<(&str, &[u8])> = files
        .iter()
        .filter(|f| !f.name.starts_with('.'))
        .filter(|f| ends_with_no_case(&f.name, suffix))
        .filter(|f| !exclude.is_some_and(|x| ends_with_no_case(&f.name, x)))
        .filter(|f| f.name.is_ascii() && f.name.len() <= 255)
        .map(|f| (f.name.as_str(), f.data.as_slice()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// One of `generate_sidecar_initrds`'s `pack_cpio` calls.
struct Sidecar<'f> {
    files: &'f [SidecarFile],
    suffix: &'static str,
    exclude: Option<&'static str>,
    dir: &'static str,
    dir_mode: u32,
    file_mode: u32,
    pcr: u32,
    description: &'static str,
}

fn ipl<'a>(pcr: u32, description: &str, subject: Subject<'a>, source: Source, what: String) -> Pending<'a> {
    let units: Vec<u16> = description.encode_utf16().collect();
    Pending { pcr, event_type: EventType::EV_IPL, data: u16z(&units), subject, source, what, tpm_only: false }
}

/// Runs systemd-stub 257 over the UKI.
pub(crate) fn run<'a>(pe: &Pe<'a>, env: &StubEnv<'_>) -> Result<StubRun<'a>, BootError> {
    let mut events = Vec::new();
    // process_arguments: LoadOptions from the boot entry (not the UEFI shell).
    let (profile, mut cmdline) = match env.load_options {
        Some(lo) => {
            let units: Vec<u16> = lo.encode_utf16().take_while(|u| *u != 0).collect();
            if units.first().is_none_or(|c| *c <= 0x1f) {
                (0, None)
            } else {
                let (profile, rest) = parse_profile(&units);
                (profile, Some(mangle_cmdline(rest)))
            }
        }
        None => (0, None),
    };
    let sections = find_sections(pe, profile)?;

    // measure_profile (PCR 12, TPM only).
    if profile != 0 {
        let s: Vec<u16> = profile.to_string().encode_utf16().collect();
        events.push(Pending {
            pcr: PCR_KERNEL_CONFIG,
            event_type: EventType::EV_EVENT_TAG,
            data: tagged(TAG_UKI_PROFILE, &u16z(&s)),
            subject: Subject::Parts(vec![Cow::Owned(u16z(&s))]),
            source: Source::SystemdStub,
            what: format!("UKI profile {profile}"),
            tpm_only: true,
        });
    }

    // measure_sections (PCR 11): name with NUL, then the VirtualSize bytes.
    for (i, name) in UNIFIED_SECTIONS.iter().enumerate() {
        if i == PCRSIG {
            continue;
        }
        let Some(s) = sections.get(i) else { continue };
        let mut name_z = name.as_bytes().to_vec();
        name_z.push(0);
        events.push(ipl(
            PCR_KERNEL_BOOT,
            name,
            Subject::Parts(vec![Cow::Owned(name_z)]),
            Source::SystemdStub,
            format!("{name} section name"),
        ));
        events.push(ipl(
            PCR_KERNEL_BOOT,
            name,
            Subject::Parts(section_bytes(pe, s)),
            Source::SystemdStub,
            format!("{name} section ({} bytes)", s.virtual_size),
        ));
    }

    // settle_command_line: LoadOptions win unless Secure Boot is on and the UKI has a
    // .cmdline or runs in a confidential VM; used ones are measured into PCR 12.
    if cmdline.as_ref().is_some_and(|c| !c.is_empty()) {
        if env.secure_boot && (sections.get(CMDLINE).is_some() || env.confidential_vm) {
            cmdline = None;
        } else {
            let c = cmdline.as_ref().expect("checked");
            events.push(ipl(
                PCR_KERNEL_CONFIG,
                &String::from_utf16_lossy(c),
                Subject::Parts(vec![Cow::Owned(u16z(c))]),
                Source::SystemdStub,
                "kernel command line from the boot entry's LoadOptions".into(),
            ));
        }
    }
    if cmdline.as_ref().is_none_or(|c| c.is_empty()) {
        cmdline = sections.get(CMDLINE).map(|s| mangle_cmdline(&xstrn8_to_16(&flatten(&section_bytes(pe, s)))));
    }
    // Add-ons are refused up front; SMBIOS type 11 extra command lines are not modeled (the
    // host supplies them, and the stub ignores them in confidential VMs).

    // generate_sidecar_initrds: credentials (12), global credentials (12), system extensions
    // (13), configuration extensions (12).
    let sidecars = [
        Sidecar {
            files: env.extra_d,
            suffix: ".cred",
            exclude: None,
            dir: ".extra/credentials",
            dir_mode: 0o500,
            file_mode: 0o400,
            pcr: PCR_KERNEL_CONFIG,
            description: "Credentials initrd",
        },
        Sidecar {
            files: env.loader_credentials,
            suffix: ".cred",
            exclude: None,
            dir: ".extra/global_credentials",
            dir_mode: 0o500,
            file_mode: 0o400,
            pcr: PCR_KERNEL_CONFIG,
            description: "Global credentials initrd",
        },
        Sidecar {
            files: env.extra_d,
            suffix: ".raw",
            exclude: Some(".confext.raw"),
            dir: ".extra/sysext",
            dir_mode: 0o555,
            file_mode: 0o444,
            pcr: PCR_SYSEXTS,
            description: "System extension initrd",
        },
        Sidecar {
            files: env.extra_d,
            suffix: ".confext.raw",
            exclude: None,
            dir: ".extra/confext",
            dir_mode: 0o555,
            file_mode: 0o444,
            pcr: PCR_KERNEL_CONFIG,
            description: "Configuration extension initrd",
        },
    ];
    let mut dynamic: Vec<Option<Vec<u8>>> = Vec::new();
    for Sidecar { files, suffix, exclude, dir, dir_mode, file_mode, pcr, description } in sidecars {
        let picked = pick(files, suffix, exclude);
        if picked.is_empty() {
            dynamic.push(None);
            continue;
        }
        if let Some((name, _)) = picked.iter().find(|(_, d)| u32::try_from(d.len()).is_err()) {
            return Err(BootError::NotModeled {
                what: format!("{name}: files of 4 GiB or more (cpio cannot hold them)"),
            });
        }
        let archive = cpio::archive(dir, dir_mode, &picked, file_mode);
        let names: Vec<&str> = picked.iter().map(|(n, _)| *n).collect();
        events.push(ipl(
            pcr,
            description,
            Subject::Parts(vec![Cow::Owned(archive.clone())]),
            Source::SystemdStub,
            format!("{description}: {}", names.join(", ")),
        ));
        dynamic.push(Some(archive));
    }

    // generate_embedded_initrds: .pcrsig, .pcrpkey, .osrel, .profile as /.extra/ files, not
    // measured. Then the combined initrd in the stub's order.
    let embedded = |index: usize, file: &str| -> Option<Vec<u8>> {
        let s = sections.get(index)?;
        Some(cpio::archive(".extra", 0o555, &[(file, &flatten(&section_bytes(pe, s)))], 0o444))
    };
    let mut pieces: Vec<Vec<Cow<'a, [u8]>>> = Vec::new();
    for index in [UCODE, INITRD] {
        if let Some(s) = sections.get(index) {
            pieces.push(section_bytes(pe, s));
        }
    }
    for archive in dynamic.into_iter().flatten() {
        pieces.push(vec![Cow::Owned(archive)]);
    }
    for (index, file) in [
        (PCRSIG, "tpm2-pcr-signature.json"),
        (PCRPKEY, "tpm2-pcr-public-key.pem"),
        (OSREL, "os-release"),
        (PROFILE, "profile"),
    ] {
        if let Some(a) = embedded(index, file) {
            pieces.push(vec![Cow::Owned(a)]);
        }
    }
    // combine_initrds: more than one piece → each zero-padded to 4 bytes; one → as is.
    let initrd: Vec<Cow<'a, [u8]>> = if pieces.len() == 1 {
        pieces.pop().expect("one piece")
    } else {
        let mut all = Vec::new();
        for p in pieces {
            let len: usize = p.iter().map(|c| c.len()).sum();
            all.extend(p);
            let pad = len.next_multiple_of(4) - len;
            if pad > 0 {
                all.push(Cow::Owned(vec![0; pad]));
            }
        }
        all
    };
    let linux = sections.get(LINUX).expect("find_sections checked .linux").clone();
    Ok(StubRun { events, profile, cmdline, initrd, linux })
}

/// PCR 11 as systemd-stub 257 leaves it for a UKI with these sections, then extended with
/// `words` (`systemd-pcrphase`'s, or any others): for each section in the stub's canonical order
/// (`.pcrsig` and empty sections skipped; the first of a name counts), the hash of its name with
/// a NUL, then the hash of its bytes. The rule `systemd-measure calculate` applies to section
/// files.
pub fn pcr11_from_sections(sections: &[(&str, &[u8])], words: &[&str], bank: eventlog::HashAlg) -> Vec<u8> {
    let mut pcr = bank.zeros();
    for (i, name) in UNIFIED_SECTIONS.iter().enumerate() {
        if i == PCRSIG {
            continue;
        }
        let Some((_, bytes)) = sections.iter().find(|(n, _)| n == name) else { continue };
        if bytes.is_empty() {
            continue;
        }
        pcr = bank.extend(&pcr, &bank.hash_parts(&[name.as_bytes(), b"\0"]));
        pcr = bank.extend(&pcr, &bank.hash(bytes));
    }
    for w in words {
        pcr = bank.extend(&pcr, &bank.hash(w.as_bytes()));
    }
    pcr
}

/// The Linux EFI stub (6.12): PCR 9 gets the LoadOptions the stub set (UTF-16 with the NUL,
/// `LoadOptionsSize` bytes) and the initrd it served, each as an `EV_EVENT_TAG` whose digest is
/// the hash of the loaded bytes.
pub(crate) fn linux_events<'a>(run: &StubRun<'a>) -> Vec<Pending<'a>> {
    let mut events = Vec::new();
    if let Some(c) = &run.cmdline {
        events.push(Pending {
            pcr: PCR_LINUX,
            event_type: EventType::EV_EVENT_TAG,
            data: tagged(TAG_LOAD_OPTIONS, b"LOADED_IMAGE::LoadOptions\0"),
            subject: Subject::Parts(vec![Cow::Owned(u16z(c))]),
            source: Source::Linux,
            what: format!("kernel command line {:?}", String::from_utf16_lossy(c)),
            tpm_only: false,
        });
    }
    let len: usize = run.initrd.iter().map(|p| p.len()).sum();
    if len > 0 {
        events.push(Pending {
            pcr: PCR_LINUX,
            event_type: EventType::EV_EVENT_TAG,
            data: tagged(TAG_INITRD, b"Linux initrd\0"),
            subject: Subject::Parts(run.initrd.clone()),
            source: Source::Linux,
            what: format!("initrd ({len} bytes)"),
            tpm_only: false,
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16s(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn cmdline_mangling() {
        let cases = [
            ("console=ttyS0 panic=-1", "console=ttyS0 panic=-1"),
            ("  a\tb\n", "a b"),
            ("a\n\nb\x7f", "a  b"),
            (" \n ", ""),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(mangle_cmdline(&u16s(input)), u16s(want), "{input:?}");
        }
    }

    #[test]
    fn utf8_to_utf16_like_the_stub() {
        let cases: [(&[u8], &str); 5] = [
            (b"abc\0def", "abc"),
            ("é€".as_bytes(), "é€"),
            ("a😀b".as_bytes(), "ab"), // outside the BMP: dropped
            (b"a\xffb", "ab"),         // invalid lead byte: dropped
            (b"a\xc3", "a"),           // truncated sequence
        ];
        for (input, want) in cases {
            assert_eq!(xstrn8_to_16(input), u16s(want), "{input:?}");
        }
    }

    #[test]
    fn profile_prefix() {
        let cases = [
            ("@1 quiet", 1, "quiet"),
            ("@2", 2, ""),
            ("@3  x", 3, " x"),
            ("@x", 0, "@x"),
            ("@1x", 0, "@1x"),
            ("@99999999999", 0, "@99999999999"),
            ("quiet", 0, "quiet"),
        ];
        for (input, profile, rest) in cases {
            let units = u16s(input);
            let (p, r) = parse_profile(&units);
            assert_eq!((p, String::from_utf16_lossy(r)), (profile, rest.to_string()), "{input:?}");
        }
    }

    /// systemd's EV_IPL encoding (UTF-16 description with NUL as data, digest over the
    /// measured UTF-16 bytes with NUL) against a real log: systemd-boot measuring its entry's
    /// command line into PCR 12 with the same `tpm_log_load_options` (tpm2-tools' Fedora 37
    /// fixture, `eventlog/testdata/`).
    #[test]
    fn load_options_event_encoding_matches_a_real_log() {
        let log = eventlog::parse(include_bytes!("../../../eventlog/testdata/event-sd-boot-fedora37.bin")).unwrap();
        let real = log.events.iter().find(|e| e.pcr == PCR_KERNEL_CONFIG).expect("a PCR 12 event");
        let eventlog::EventData::Text { text } = real.decode() else { panic!("{real:?}") };
        assert_eq!(text, " console=ttyS0 console=tty0 efi=debug ");
        let units: Vec<u16> = text.encode_utf16().collect();
        let ours = super::super::finish(
            vec![ipl(
                PCR_KERNEL_CONFIG,
                &text,
                Subject::Parts(vec![Cow::Owned(u16z(&units))]),
                Source::SystemdStub,
                String::new(),
            )],
            &[eventlog::HashAlg::Sha256],
        );
        assert_eq!(ours[0].event, *real);
    }

    #[test]
    fn sidecar_selection() {
        let f = |n: &str| SidecarFile { name: n.into(), data: vec![1] };
        let files = [f("b.raw"), f("A.RAW"), f("c.confext.raw"), f(".hidden.raw"), f("x.cred"), f("é.raw")];
        let names = |v: Vec<(&str, &[u8])>| v.into_iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(pick(&files, ".raw", Some(".confext.raw"))), ["A.RAW", "b.raw"]);
        assert_eq!(names(pick(&files, ".confext.raw", None)), ["c.confext.raw"]);
        assert_eq!(names(pick(&files, ".cred", None)), ["x.cred"]);
    }
}
