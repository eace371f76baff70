//! `nodeimg measure pcrs` and `measure tdx --uki`, the real binary: the real-boot fixtures
//! (`measure/testdata/boot/`, PCRs read from the vTPM) predicted from their inputs (rebuilt by
//! `make setup` into `tools/boot/`), `--check-eventlog` against the captured logs, the
//! `--eventlog-out` log read back by `tpm2_eventlog` (the oracle), and bad input (exit 2, saying
//! what and where; a mismatch exits 1).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{assert_fails, nodeimg, tool};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn path(rel: &str) -> String {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing: run `make setup`", p.display());
    p.to_str().unwrap().to_owned()
}

const OVMF: &str = "tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF";
/// Debian bookworm's OVMF: its OVMF_CODE_4M.fd is built with Secure Boot support.
const OVMF_BOOKWORM: &str = "tools/ovmf/2022.11-6+deb12u2/usr/share/OVMF";

/// `pcrs`, `vars`, the firmware code, and whether that code supports Secure Boot, of a fixture.
fn fixture(mode: &str) -> (BTreeMap<String, BTreeMap<String, String>>, String, String, &'static str) {
    let real =
        serde_json::from_slice(&std::fs::read(root().join(format!("measure/testdata/boot/{mode}/pcrs.json"))).unwrap())
            .unwrap();
    match mode {
        "sb-on" => (
            real,
            path(&format!("{OVMF}/OVMF_VARS_4M.snakeoil.fd")),
            path(&format!("{OVMF}/OVMF_CODE_4M.secboot.fd")),
            "with",
        ),
        "sb-setup" => (
            real,
            path(&format!("{OVMF_BOOKWORM}/OVMF_VARS_4M.fd")),
            path(&format!("{OVMF_BOOKWORM}/OVMF_CODE_4M.fd")),
            "with",
        ),
        _ => (real, path(&format!("{OVMF}/OVMF_VARS_4M.fd")), path(&format!("{OVMF}/OVMF_CODE_4M.fd")), "without"),
    }
}

#[test]
fn predicts_the_real_boots() {
    for mode in ["sb-off", "sb-on", "sb-setup", "extras", "all-banks"] {
        let (real, vars, code, _) = fixture(mode);
        // all-banks booted the sb-off inputs with a vTPM that also allocates sha1; sb-setup the
        // same UKI and disk on bookworm's firmware.
        let inputs = if mode == "all-banks" || mode == "sb-setup" { "sb-off" } else { mode };
        let banks: &[&str] = if mode == "all-banks" { &["sha1", "sha256", "sha384"] } else { &["sha256", "sha384"] };
        let bank_list = banks.join(",");
        let uki = path(&format!("tools/boot/{inputs}/uki.efi"));
        let gpt = path(&format!("tools/boot/{inputs}/gpt.bin"));
        let log = path(&format!("measure/testdata/boot/{mode}/eventlog.bin"));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("predicted.bin");
        let mut args = vec![
            "measure",
            "pcrs",
            "--uki",
            &uki,
            "--firmware-vars",
            &vars,
            // Secure Boot support is read from the firmware code (a note says so).
            "--firmware-code",
            &code,
            "--disk",
            &gpt,
            "--banks",
            &bank_list,
            "--json",
            "--eventlog-out",
            out.to_str().unwrap(),
            "--check-eventlog",
            &log,
        ];
        let extras = (mode == "extras").then(|| {
            (path(&format!("tools/boot/{mode}/extra.d")), path(&format!("tools/boot/{mode}/loader-credentials")))
        });
        if let Some((extra_d, loader_credentials)) = &extras {
            args.extend(["--extra-d", extra_d, "--loader-credentials", loader_credentials]);
        }
        let run = nodeimg(&root(), &args);
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        for bank in banks {
            let real = &real[*bank];
            for pcr in ["4", "5", "7", "9", "12", "13"] {
                assert_eq!(v["pcrs"][bank][pcr], real[pcr], "{mode}: {bank} PCR {pcr}");
            }
            // No systemd in the capture initrd: the real PCR 11 is the value after the stub.
            assert_eq!(v["pcr11_phases"][bank]["stub"], real["11"], "{mode}: {bank} PCR 11");
            assert_eq!(v["pcrs"][bank]["11"], v["pcr11_phases"][bank]["ready"], "{mode}: pcrs are at ready");
        }
        let state = match mode {
            "sb-on" => "enforcing",
            "sb-setup" => "setup-mode",
            _ => "not-supported",
        };
        assert_eq!(v["secure_boot"], state, "{mode}");
        let support = if state == "not-supported" {
            "built without Secure Boot support"
        } else {
            "built with Secure Boot support"
        };
        let notes = v["notes"].as_array().unwrap();
        assert!(notes.iter().any(|n| n.as_str().unwrap().contains(support)), "{mode}: {notes:?}");

        // The written log, as tpm2_eventlog replays it: the predicted values (PCR 11 at "stub").
        let t = tool(&root(), "tpm2_eventlog", &[out.to_str().unwrap()]);
        assert_eq!(t.code, 0, "{mode}: {t:?}");
        let replayed = tpm2_eventlog_pcrs(&t.stdout);
        for bank in banks {
            let (replayed, real) = (&replayed[*bank], &real[*bank]);
            for pcr in ["4", "5", "7", "9"] {
                assert_eq!(replayed[pcr], real[pcr].as_str(), "{mode}: tpm2_eventlog {bank} PCR {pcr}");
            }
            assert_eq!(replayed["11"], real["11"].as_str(), "{mode}: tpm2_eventlog {bank} PCR 11");
        }
    }
}

/// The `pcrs:` section of tpm2_eventlog's YAML: bank → PCR → lowercase hex.
fn tpm2_eventlog_pcrs(yaml: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut bank = None;
    let lines = yaml.lines().skip_while(|l| *l != "pcrs:").skip(1);
    for l in lines {
        if let Some(b) = l.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            bank = Some(b.trim().to_owned());
        } else if let (Some(b), Some((pcr, v))) = (&bank, l.trim().split_once(':')) {
            out.entry(b.clone())
                .or_default()
                .insert(pcr.trim().to_owned(), v.trim().trim_start_matches("0x").to_lowercase());
        }
    }
    out
}

#[test]
fn a_wrong_firmware_flavour_is_a_mismatch_that_is_explained() {
    let (_, vars, _, _) = fixture("sb-on");
    let run = nodeimg(
        &root(),
        &[
            "measure",
            "pcrs",
            "--uki",
            &path("tools/boot/sb-on/uki.efi"),
            "--firmware-vars",
            &vars,
            "--secure-boot",
            "off",
            "--check-eventlog",
            &path("measure/testdata/boot/sb-on/eventlog.bin"),
        ],
    );
    assert_fails(
        &run,
        1,
        &[
            "PCR 4:",
            "missing: the kernel systemd-stub loaded",
            "PCR 7:",
            "Secure Boot state (SecureBoot variable) differs",
        ],
    );
}

#[test]
fn bad_input_is_exit_2_and_says_what() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = d.join("short.fd");
    std::fs::write(&short, &std::fs::read(root().join(OVMF).join("OVMF_VARS_4M.fd")).unwrap()[..100]).unwrap();
    let mut flipped = std::fs::read(root().join(OVMF).join("OVMF_VARS_4M.snakeoil.fd")).unwrap();
    flipped[0x64 + 43] ^= 0x40; // the first variable's DataSize, + 1 GiB
    let flipped_path = d.join("flipped.fd");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let uki = path("tools/boot/sb-off/uki.efi");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (vec!["--uki".into(), path("tools/uki/linuxx64.efi.stub")], vec!["not a UKI: there is no .linux section"]),
        (vec!["--uki".into(), "/nonexistent.efi".into()], vec!["/nonexistent.efi", "No such file"]),
        (
            vec!["--uki".into(), uki.clone(), "--firmware-vars".into(), path(&format!("{OVMF}/OVMF_CODE_4M.fd"))],
            vec!["OVMF_CODE_4M.fd", "not the NV variable store", "CODE file instead of the VARS"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--firmware-vars".into(), short.to_str().unwrap().into()],
            vec!["short.fd", "variable store at offset 0x48"],
        ),
        (
            vec![
                "--uki".into(),
                uki.clone(),
                "--firmware-vars".into(),
                flipped_path.to_str().unwrap().into(),
                "--secure-boot".into(),
                "on".into(),
            ],
            vec!["flipped.fd", "variable at offset 0x64", "runs past the end of the store"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--firmware-vars".into(), path(&format!("{OVMF}/OVMF_VARS_4M.ms.fd"))],
            vec!["enroll a PK", "--firmware-code", "--secure-boot with"],
        ),
        (
            vec![
                "--uki".into(),
                uki.clone(),
                "--firmware-code".into(),
                path(&format!("{OVMF}/OVMF_CODE_4M.fd")),
                "--secure-boot".into(),
                "with".into(),
            ],
            vec![
                "--secure-boot with contradicts the firmware code",
                "OVMF_CODE_4M.fd is built without Secure Boot support",
            ],
        ),
        (
            vec![
                "--uki".into(),
                uki.clone(),
                "--firmware-code".into(),
                path(&format!("{OVMF_BOOKWORM}/OVMF_CODE_4M.fd")),
                "--secure-boot".into(),
                "off".into(),
            ],
            vec!["--secure-boot without contradicts", "built with Secure Boot support"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--firmware-code".into(), path(&format!("{OVMF}/OVMF_VARS_4M.fd"))],
            vec![
                "OVMF_VARS_4M.fd",
                "cannot tell whether this firmware supports Secure Boot",
                "no UEFI firmware volume",
            ],
        ),
        (
            vec![
                "--uki".into(),
                path("tools/boot/sb-off/uki.efi"),
                "--firmware-vars".into(),
                path(&format!("{OVMF}/OVMF_VARS_4M.ms.fd")),
                "--secure-boot".into(),
                "on".into(),
            ],
            vec!["Secure Boot is enforcing", "refuse the UKI", "not signed"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--stub-version".into(), "255.4".into()],
            vec!["systemd-stub 255.4 is not modeled"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--db".into(), short.to_str().unwrap().into()],
            vec!["short.fd", "EFI_SIGNATURE_LIST", "(db)"],
        ),
        (
            vec!["--uki".into(), uki.clone(), "--disk".into(), short.to_str().unwrap().into()],
            vec!["disk image", "no GPT header"],
        ),
        (vec!["--uki".into(), uki.clone(), "--banks".into(), "md5".into()], vec!["unknown hash algorithm \"md5\""]),
    ];
    for (args, words) in cases {
        let mut all = vec!["measure".to_string(), "pcrs".into()];
        all.extend(args.clone());
        let argv: Vec<&str> = all.iter().map(String::as_str).collect();
        let run = nodeimg(Path::new("/"), &argv);
        assert_fails(&run, 2, &words);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
    }
    // A failed run leaves no output file behind.
    let out = d.join("never.bin");
    let run = nodeimg(
        &root(),
        &["measure", "pcrs", "--uki", &path("tools/uki/vmlinuz.signed"), "--eventlog-out", out.to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(!out.exists());
}

#[test]
fn tdx_rtmrs() {
    let ovmf = path("tools/ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd");
    let dir = tempfile::tempdir().unwrap();
    let ccel = dir.path().join("td.ccel");
    let run = nodeimg(
        &root(),
        &[
            "measure",
            "tdx",
            "--ovmf",
            &ovmf,
            "--uki",
            &path("tools/boot/sb-off/uki.efi"),
            "--disk",
            &path("tools/boot/sb-off/gpt.bin"),
            "--json",
            "--eventlog-out",
            ccel.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["rtmrs"]["rtmr0"], "platform-observed");
    let replay = nodeimg(&root(), &["eventlog", "replay", "--json", ccel.to_str().unwrap()]);
    assert_eq!(replay.code, 0, "{replay:?}");
    let r: Value = serde_json::from_str(&replay.stdout).unwrap();
    assert_eq!(r["banks"]["sha384"]["1"], v["rtmrs"]["rtmr1"]);
    assert_eq!(r["banks"]["sha384"]["2"], v["rtmrs"]["rtmr2"]);
    // Without --disk there is no RTMR1; boot options need --uki.
    let run = nodeimg(&root(), &["measure", "tdx", "--ovmf", &ovmf, "--uki", &path("tools/boot/sb-off/uki.efi")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("rtmr1=(needs --disk)"), "{run:?}");
    assert_fails(&nodeimg(&root(), &["measure", "tdx", "--ovmf", &ovmf, "--secure-boot", "on"]), 2, &["give --uki"]);
}

/// The prediction through a real (software) TPM: every predicted event of the Secure-Boot-off
/// fixture (`--eventlog-out`) extended into a fresh swtpm with `tpm2_pcrextend`, then read back
/// through tss-esapi by `nodeimg pcrs read`, gives the predicted PCRs in every bank.
#[test]
fn predicted_events_extended_into_a_swtpm_read_back_as_predicted() {
    let (_, vars, _, sb) = fixture("sb-off");
    let uki = path("tools/boot/sb-off/uki.efi");
    let gpt = path("tools/boot/sb-off/gpt.bin");
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("predicted.bin");
    let run = nodeimg(
        &root(),
        &[
            "measure",
            "pcrs",
            "--uki",
            &uki,
            "--firmware-vars",
            &vars,
            "--secure-boot",
            sb,
            "--disk",
            &gpt,
            "--banks",
            "sha1,sha256,sha384",
            "--json",
            "--eventlog-out",
            log_path.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let predicted: Value = serde_json::from_str(&run.stdout).unwrap();

    let tpm = common::swtpm::Swtpm::start("sha1,sha256,sha384");
    let tcti = tpm.tcti();
    let log = ::eventlog::parse(&std::fs::read(&log_path).unwrap()).unwrap();
    let specs: Vec<String> = log.events.iter().filter(|e| e.is_extended()).map(common::swtpm::extend_spec).collect();
    assert!(specs.len() > 20, "the predicted log has the boot's events: {specs:?}");
    tpm.extend(&specs);

    let read = nodeimg(&root(), &["pcrs", "read", "--tcti", &tcti, "--json"]);
    assert_eq!(read.code, 0, "{read:?}");
    let tpm_pcrs: Value = serde_json::from_str(&read.stdout).unwrap();
    for bank in ["sha1", "sha256", "sha384"] {
        for pcr in ["4", "5", "7", "9", "12", "13"] {
            assert!(predicted["pcrs"][bank][pcr].is_string(), "{bank} PCR {pcr} not predicted: {predicted}");
            assert_eq!(
                tpm_pcrs["banks"][bank][pcr], predicted["pcrs"][bank][pcr],
                "{bank} PCR {pcr}: TPM vs prediction"
            );
        }
        // The log holds the stub's events; the phase words come later, from systemd.
        assert!(predicted["pcr11_phases"][bank]["stub"].is_string(), "{bank} PCR 11 not predicted");
        assert_eq!(tpm_pcrs["banks"][bank]["11"], predicted["pcr11_phases"][bank]["stub"], "{bank} PCR 11");
    }
}

/// The log given to `--check-eventlog` is read and parsed before anything is written: a bad one
/// leaves no `--eventlog-out`, and one path for both is refused (the prediction would replace
/// the log it is checked against, and the check would pass).
#[test]
fn the_log_to_check_is_read_before_the_predicted_one_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let uki = path("tools/boot/sb-off/uki.efi");
    let measure = |extra: &[&str]| nodeimg(d, &[&["measure", "pcrs", "--uki", &uki][..], extra].concat());
    std::fs::write(d.join("bad.log"), b"not an event log").unwrap();
    let run = measure(&["--eventlog-out", "out.bin", "--check-eventlog", "bad.log"]);
    assert_fails(&run, 2, &["bad.log"]);
    assert!(!d.join("out.bin").exists(), "{run:?}");
    // The Secure-Boot-on boot's log is not this UKI's boot without Secure Boot: a mismatch, and
    // the predicted log is still written beside it.
    let other = std::fs::read(root().join("measure/testdata/boot/sb-on/eventlog.bin")).unwrap();
    std::fs::write(d.join("real.log"), &other).unwrap();
    let run = measure(&["--eventlog-out", "out.bin", "--check-eventlog", "real.log"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(d.join("out.bin").is_file());
    std::fs::hard_link(d.join("real.log"), d.join("link.log")).unwrap();
    for out in ["real.log", "./real.log", "link.log"] {
        let run = measure(&["--eventlog-out", out, "--check-eventlog", "real.log"]);
        assert_fails(&run, 2, &["the same file"]);
        assert_eq!(std::fs::read(d.join("real.log")).unwrap(), other, "{out}: the log to check was replaced");
    }
}

/// A section whose VirtualSize reaches far past its data is zero-filled in memory by the
/// firmware and measured whole by the stub; the model refuses gigabytes of fill (exit 2) instead
/// of allocating them.
#[test]
fn a_section_of_gigabytes_of_zero_fill_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut pe = std::fs::read(path("tools/boot/sb-off/uki.efi")).unwrap();
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let coff = u32::from_le_bytes(pe[0x3c..0x40].try_into().unwrap()) as usize + 4;
    let (count, optional) = (u16_at(&pe, coff + 2), u16_at(&pe, coff + 16));
    let table = coff + 20 + optional;
    let initrd = (0..count).map(|i| table + 40 * i).find(|&s| pe[s..s + 8].starts_with(b".initrd")).expect(".initrd");
    pe[initrd + 8..initrd + 12].copy_from_slice(&0xf000_0000u32.to_le_bytes()); // VirtualSize
    pe[coff + 20 + 56..coff + 20 + 60].copy_from_slice(&0xffff_f000u32.to_le_bytes()); // SizeOfImage
    let uki = dir.path().join("fill.efi");
    std::fs::write(&uki, &pe).unwrap();
    let run = nodeimg(dir.path(), &["measure", "pcrs", "--uki", uki.to_str().unwrap()]);
    assert_fails(&run, 2, &["section .initrd", "zero fill"]);
}
