//! The real-boot check: boots the capture UKI under QEMU + OVMF + swtpm
//! (`tests/boot/boot-capture.sh`), Secure Boot off, on, off with credentials and extensions
//! next to the UKI (`--extras`), and off with a vTPM that also allocates sha1 (`--banks`), and
//! checks that
//!
//! * `nodeimg eventlog replay` of the captured log gives exactly the PCRs the booted kernel read
//!   from the vTPM, in every bank it allocated (and that untouched PCRs hold reset values);
//! * PCR 11 equals what `systemd-measure` (systemd 257, the oracle) computes for the UKI;
//! * the boot-chain model (`nodeimg measure pcrs`, from the booted UKI, the VARS file and the
//!   disk's GPT) predicts PCR 4, 5, 7, 9, 11, 12 and 13 in every bank, and the captured log
//!   extends exactly the predicted events in those PCRs (the event diff is printed otherwise);
//! * the live capture equals the committed fixture (`measure/testdata/boot/`) for every PCR
//!   whose inputs are unchanged — and, when every input matches, the log is byte-identical.
//!
//! Inputs per PCR (from the captured logs; see measure/testdata/boot/README.md): PCR 0, 2, 3, 5,
//! 6, 7 depend on the firmware (OVMF code + VARS) only; PCR 1 also on the QEMU version (its ACPI
//! tables and boot-option device paths); PCR 4 on the firmware and the UKI; PCR 9 and 11 on the
//! UKI; PCR 12 and 13 stay zero unless the ESP has extras (then 9, 12, 13 also depend on them).
//! Needs `make setup` (it fails loudly without it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::nodeimg;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

type Banks = BTreeMap<String, BTreeMap<String, String>>;

fn read_banks(path: &Path) -> Banks {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `inputs.txt` as key → value, `sha256 HASH PATH` lines keyed by PATH.
fn inputs(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            if k == "sha256" {
                let (hash, file) = v.split_once(' ')?;
                Some((file.to_owned(), hash.to_owned()))
            } else {
                Some((k.to_owned(), v.to_owned()))
            }
        })
        .collect()
}

fn capture(mode: &str, out: &Path) {
    let mut cmd = Command::new(root().join("tests/boot/boot-capture.sh"));
    cmd.arg("--out").arg(out);
    match mode {
        "sb-on" => {
            cmd.arg("--secure-boot");
        }
        "extras" => {
            cmd.arg("--extras");
        }
        "all-banks" => {
            cmd.args(["--banks", "sha1,sha256,sha384"]);
        }
        "sb-setup" => {
            cmd.args(["--ovmf", "2022.11-6+deb12u2"]);
        }
        _ => {}
    }
    let o = cmd.output().expect("running tests/boot/boot-capture.sh");
    assert!(
        o.status.success(),
        "boot-capture.sh ({mode}) failed (run `make setup` if a tool is missing):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn real_boot_replays_and_matches_the_fixture() {
    for mode in ["sb-off", "sb-on", "sb-setup", "extras", "all-banks"] {
        let dir = tempfile::tempdir().unwrap();
        capture(mode, dir.path());
        let log: PathBuf = dir.path().join("eventlog.bin");
        let real = read_banks(&dir.path().join("pcrs.json"));
        let banks: &[&str] = if mode == "all-banks" { &["sha1", "sha256", "sha384"] } else { &["sha256", "sha384"] };
        assert_eq!(real.keys().map(String::as_str).collect::<Vec<_>>(), banks, "{mode}");

        // 1. Replay of the live log == the live PCRs.
        let run = nodeimg(root(), &["eventlog", "replay", "--json", log.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let replayed: Banks = serde_json::from_value(v["banks"].clone()).unwrap();
        assert_eq!(replayed.keys().collect::<Vec<_>>(), real.keys().collect::<Vec<_>>(), "{mode}");
        for (bank, values) in &real {
            for (pcr, value) in values {
                let n: u32 = pcr.parse().unwrap();
                let size = value.len() / 2;
                let want = match replayed[bank].get(pcr) {
                    Some(v) => v.clone(),
                    None if n == 10 => continue, // IMA, from the kernel's own log
                    None if (17..=22).contains(&n) => "ff".repeat(size),
                    None => "00".repeat(size),
                };
                assert_eq!(&want, value, "{mode}: {bank} PCR {pcr}: replay vs the vTPM");
            }
        }

        // 2. PCR 11 == what systemd-measure 257 computes from the UKI's sections (no phase).
        let measured = std::fs::read_to_string(dir.path().join("systemd-measure.txt")).unwrap();
        for bank in banks {
            let line = format!("11:{bank}={}", real[*bank]["11"]);
            assert!(measured.lines().any(|l| l == line), "{mode}: no {line:?} in systemd-measure's\n{measured}");
        }

        // 3. The boot-chain model's prediction == the vTPM, and its events == the captured log's.
        // Secure Boot support is read from the firmware code, as booted.
        let (ovmf, code, vars) = match mode {
            "sb-on" => ("2025.02-8+deb13u1", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.snakeoil.fd"),
            "sb-setup" => ("2022.11-6+deb12u2", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
            _ => ("2025.02-8+deb13u1", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
        };
        let firmware = root().join("tools/ovmf").join(ovmf).join("usr/share/OVMF");
        let path = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
        let mut args = vec![
            "measure".to_string(),
            "pcrs".into(),
            "--uki".into(),
            path("uki.efi"),
            "--firmware-vars".into(),
            firmware.join(vars).to_str().unwrap().into(),
            "--firmware-code".into(),
            firmware.join(code).to_str().unwrap().into(),
            "--disk".into(),
            path("gpt.bin"),
            "--banks".into(),
            banks.join(","),
            "--json".into(),
            "--check-eventlog".into(),
            path("eventlog.bin"),
        ];
        if mode == "extras" {
            args.extend([
                "--extra-d".into(),
                path("extra.d"),
                "--loader-credentials".into(),
                path("loader-credentials"),
            ]);
        }
        let run = nodeimg(root(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 0, "{mode}: the prediction departs from the real boot (event diff in stderr):\n{run:?}");
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        for bank in banks {
            for pcr in ["4", "5", "7", "9", "12", "13"] {
                assert_eq!(v["pcrs"][bank][pcr], real[*bank][pcr], "{mode}: {bank} PCR {pcr}: predicted vs the vTPM");
            }
            // No systemd in the capture initrd: PCR 11 holds the stub's sections only.
            assert_eq!(
                v["pcr11_phases"][bank]["stub"], real[*bank]["11"],
                "{mode}: {bank} PCR 11: predicted vs the vTPM"
            );
        }

        // 4. Live capture vs the committed fixture, PCR by PCR where the inputs are the same.
        let fix = root().join("measure/testdata/boot").join(mode);
        let (now, then) = (inputs(&dir.path().join("inputs.txt")), inputs(&fix.join("inputs.txt")));
        let changed: BTreeSet<&str> =
            then.iter().filter(|(k, v)| now.get(*k) != Some(v)).map(|(k, _)| k.as_str()).collect();
        let firmware = changed.iter().any(|k| k.contains("/OVMF/"));
        let uki = changed.contains("WORK/uki.efi");
        let qemu = changed.contains("qemu") || changed.contains("qemu-cmdline");
        let extras = changed.iter().any(|k| k.starts_with("WORK/extras/"));
        let fixture = read_banks(&fix.join("pcrs.json"));
        let mut skipped = Vec::new();
        for pcr in 0..24u32 {
            let depends_on_changed = match pcr {
                0 | 2 | 3 | 5 | 6 | 7 => firmware,
                1 => firmware || qemu,
                4 => firmware || uki,
                9 | 12 | 13 => uki || extras,
                11 => uki,
                10 => true, // IMA's boot_aggregate covers PCR 0-9
                _ => false,
            };
            if depends_on_changed {
                skipped.push(pcr);
                continue;
            }
            for bank in banks {
                let key = pcr.to_string();
                assert_eq!(real[*bank][&key], fixture[*bank][&key], "{mode}: {bank} PCR {pcr}: live vs fixture");
            }
        }
        // A comparison that dropped every PCR the boot measures compares nothing: that is a
        // fixture to regenerate (tests/boot/boot-capture.sh), not a pass.
        let measured = [0u32, 1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 13];
        assert!(
            !measured.iter().all(|p| skipped.contains(p)),
            "{mode}: every measured PCR was dropped from the fixture comparison (inputs changed: {}); \
             regenerate measure/testdata/boot/{mode} with tests/boot/boot-capture.sh",
            changed.iter().copied().collect::<Vec<_>>().join(", ")
        );
        if changed.is_empty() {
            assert!(
                std::fs::read(&log).unwrap() == std::fs::read(fix.join("eventlog.bin")).unwrap(),
                "{mode}: same inputs, but the log differs from the fixture"
            );
        } else {
            eprintln!(
                "{mode}: inputs changed since the fixture ({}); PCRs {skipped:?} not compared",
                changed.iter().copied().collect::<Vec<_>>().join(", ")
            );
        }
    }
}
