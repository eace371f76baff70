//! `nodeimg eventlog show|replay|diff` run as a user would, on the measure crate's fixtures:
//! real boots under QEMU + OVMF + swtpm (`measure/testdata/boot/`, PCRs read by the booted
//! kernel) and published logs (`eventlog/testdata/`, PCRs read from real TPMs).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{assert_fails, nodeimg};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `eventlogs/NAME`: the published logs in `eventlog/testdata/`; `boot/…`: the real boots in
/// `measure/testdata/`.
fn fixture(rel: &str) -> PathBuf {
    match rel.strip_prefix("eventlogs/") {
        Some(name) => root().join("eventlog/testdata").join(name),
        None => root().join("measure/testdata").join(rel),
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

type Banks = BTreeMap<String, BTreeMap<String, String>>;

/// `replay --json` gives the PCRs the booted kernel read from the vTPM.
#[test]
fn replay_json_matches_the_captured_pcrs() {
    for mode in ["sb-off", "sb-on"] {
        let log = fixture(&format!("boot/{mode}/eventlog.bin"));
        let run = nodeimg(root(), &["eventlog", "replay", "--json", arg(&log)]);
        assert_eq!(run.code, 0, "{run:?}");
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(v["format"], "tcg-crypto-agile", "{mode}");
        let replayed: Banks = serde_json::from_value(v["banks"].clone()).unwrap();
        let real: Banks =
            serde_json::from_slice(&std::fs::read(fixture(&format!("boot/{mode}/pcrs.json"))).unwrap()).unwrap();
        for (bank, pcrs) in &replayed {
            for (pcr, value) in pcrs {
                assert_eq!(Some(value), real[bank].get(pcr), "{mode}: {bank} PCR {pcr}");
            }
        }
        assert_eq!(replayed["sha384"].len(), 10, "{mode}: PCRs 0-7, 9, 11 are in the log");
    }
}

/// The text forms: one line per register; `show` names what each event is.
#[test]
fn replay_and_show_text() {
    let log = fixture("boot/sb-off/eventlog.bin");
    let run = nodeimg(root(), &["eventlog", "replay", arg(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    let real: Banks = serde_json::from_slice(&std::fs::read(fixture("boot/sb-off/pcrs.json")).unwrap()).unwrap();
    let line = format!("sha256 PCR 11  {}", real["sha256"]["11"]);
    assert!(run.stdout.lines().any(|l| l == line), "no {line:?} in\n{run:?}");

    let run = nodeimg(root(), &["eventlog", "show", arg(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    for want in [
        "TCG PC Client crypto-agile log, 45 events, banks sha256, sha384",
        "\"Calling EFI Application from Boot Option\"",
        "\\EFI\\BOOT\\BOOTX64.EFI",
        "\".cmdline\"",
        "tag 0x8f3b22ec (Linux initrd)",
        "SecureBoot (8be4df61-93ca-11d2-aa0d-00e098032b8c), 0 bytes",
    ] {
        assert!(run.stdout.contains(want), "no {want:?} in\n{}", run.stdout);
    }

    let run = nodeimg(root(), &["eventlog", "show", "--json", arg(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 44);
    let e = &events[40 - 1];
    assert_eq!((e["number"].as_u64(), e["register"].as_str()), (Some(40), Some("PCR 4")));
    assert_eq!(e["decoded"]["device_path"], "VenMedia(55c5d1f8-04cd-46b5-8a20-e56cbb3052d0)");
}

/// The TDX CCEL: RTMRs, as published.
#[test]
fn replay_ccel() {
    let log = fixture("eventlogs/cos-113-intel-tdx-dupe-separator-unpadded.bin");
    let run = nodeimg(root(), &["eventlog", "replay", arg(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(
        "sha384 RTMR1   0ee9366c928a77092f55e9e114c7394181fd264699155f0df77d23577618d5f650568a17d379355a07bd846e552f4e20"
    ), "{run:?}");
    // Read as a TPM log it has no TPM meaning, but --format is the user's call.
    let run = nodeimg(root(), &["eventlog", "replay", "--format", "tcg", arg(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("sha384 PCR 2"), "{run:?}");
}

/// diff: identical logs exit 0; Secure Boot off vs on exits 1 and explains each register.
#[test]
fn diff_explains_differences() {
    let off = fixture("boot/sb-off/eventlog.bin");
    let on = fixture("boot/sb-on/eventlog.bin");
    let run = nodeimg(root(), &["eventlog", "diff", arg(&off), arg(&off)]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "the logs extend the same events (sha256, sha384)\n"));

    let run = nodeimg(root(), &["eventlog", "diff", "--json", arg(&off), arg(&on)]);
    assert_eq!(run.code, 1, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let meanings: BTreeMap<String, String> = v["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["register"].as_str().unwrap().to_owned(), r["meaning"].as_str().unwrap().to_owned()))
        .collect();
    let want = [
        ("PCR 0", "A firmware volume (the firmware code) differs"),
        ("PCR 1", "Platform configuration \"ACPI DATA\" differs"),
        ("PCR 4", "missing: the kernel systemd-stub loaded from its .linux section (Authenticode digest)"),
        ("PCR 7", "The Secure Boot state (SecureBoot variable) differs"),
    ];
    assert_eq!(meanings, want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<BTreeMap<_, _>>());

    let run = nodeimg(root(), &["eventlog", "diff", arg(&off), arg(&on)]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("PCR 4: event 4 of 4 expected / 3 actual differs"), "{run:?}");
    assert!(run.stdout.ends_with("4 register(s) differ: PCR 0, PCR 1, PCR 4, PCR 7\n"), "{run:?}");
}

/// Edited logs: the diff names the UKI section, the initrd, the Secure Boot variable.
#[test]
fn diff_names_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("boot/sb-on/eventlog.bin")).unwrap();
    let log = ::eventlog::parse(&bytes).unwrap();
    type Pick = dyn Fn(&::eventlog::Event) -> bool;
    let cases: [(&str, &Pick, &str); 4] = [
        (
            "cmdline",
            &|e| e.pcr == 11 && e.decode().to_string() == "\".cmdline\"" && !e.is_section_name_event(),
            "PCR 11: The UKI's .cmdline section differs",
        ),
        (
            "initrd",
            &|e| e.pcr == 9 && e.decode().to_string().contains("Linux initrd"),
            "PCR 9: The initrd (as the Linux EFI stub loaded it) differs",
        ),
        ("db", &|e| e.pcr == 7 && e.decode().to_string().starts_with("db ("), "PCR 7: Secure Boot db differs"),
        (
            "authority",
            &|e| e.pcr == 7 && e.event_type == ::eventlog::EventType::EV_EFI_VARIABLE_AUTHORITY,
            "PCR 7: The Secure Boot db entry that authorized an image (its signing certificate) differs",
        ),
    ];
    for (name, pick, want) in cases {
        let mut edited = log.clone();
        let e = edited.events.iter_mut().find(|e| pick(e)).unwrap_or_else(|| panic!("{name}: no event"));
        for d in &mut e.digests {
            d.bytes[0] ^= 1;
        }
        let path = dir.path().join(format!("{name}.bin"));
        std::fs::write(&path, ::eventlog::write(&edited).unwrap()).unwrap();
        let orig = fixture("boot/sb-on/eventlog.bin");
        let run = nodeimg(root(), &["eventlog", "diff", arg(&orig), arg(&path)]);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        let first = run.stdout.lines().next().unwrap_or_default();
        assert!(first.ends_with(&want[want.find(':').unwrap() + 2..]), "{name}: {first:?}");
        assert!(first.starts_with(&want[..want.find(':').unwrap()]), "{name}: {first:?}");
    }
}

/// Bad input: exit 2 with what and where; never a panic.
#[test]
fn bad_logs_exit_2_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("boot/sb-off/eventlog.bin")).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let truncated = write("truncated.bin", &bytes[..bytes.len() - 10]);
    let mut oversized = bytes.clone();
    // Event 1 starts after the 32-byte header and its 37-byte Spec ID data (offset 0x45); its
    // size field follows index, type, count and two TPMT_HAs (2+32, 2+48).
    let size_at = 0x45 + 12 + 34 + 50;
    oversized[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let oversized = write("oversized.bin", &oversized);
    let mut lying = bytes.clone();
    lying[0x45 + 8..0x45 + 12].copy_from_slice(&7u32.to_le_bytes());
    let lying = write("lying.bin", &lying);
    let mut unknown = bytes.clone();
    unknown[0x45 + 12..0x45 + 14].copy_from_slice(&0x0012u16.to_le_bytes());
    let unknown = write("unknown.bin", &unknown);
    let empty = write("empty.bin", b"");
    let cases: [(&Path, &[&str]); 6] = [
        (&truncated, &["truncated.bin", "event 44 (offset 0x16e5)", "runs past the end of the log"]),
        (&oversized, &["oversized.bin", "event 1 (offset 0x45)", "event data of 4294967295 bytes"]),
        (&lying, &["lying.bin", "event 1 (offset 0x45)", "digest count 7 exceeds the 2 bank(s)"]),
        (&unknown, &["unknown.bin", "digest algorithm sm3_256 (at offset 0x51) is not declared"]),
        (&empty, &["empty.bin", "the event log is empty"]),
        (Path::new("/nonexistent/log.bin"), &["reading /nonexistent/log.bin"]),
    ];
    for (path, words) in cases {
        for sub in ["show", "replay"] {
            let run = nodeimg(root(), &["eventlog", sub, arg(path)]);
            assert_fails(&run, 2, words);
            assert!(!run.stderr.contains("panicked"), "{run:?}");
        }
    }
    let run = nodeimg(root(), &["eventlog", "diff", arg(&truncated), arg(&empty)]);
    assert_fails(&run, 2, &["truncated.bin"]);
    let ccel = fixture("eventlogs/cos-113-intel-tdx-dupe-separator-unpadded.bin");
    let off = fixture("boot/sb-off/eventlog.bin");
    let run = nodeimg(root(), &["eventlog", "diff", arg(&off), arg(&ccel)]);
    assert_fails(&run, 2, &["cannot compare a TCG PC Client crypto-agile log with a TDX CC event log"]);
}
