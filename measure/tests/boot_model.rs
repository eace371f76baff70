//! The boot-chain model (`measure::boot`) against what others measured:
//!
//! * the real boots of `testdata/boot/` (QEMU + OVMF 2025.02 + swtpm, systemd-stub 257, Linux
//!   6.12; PCRs read by the booted kernel from the vTPM; Secure Boot off, on, off with
//!   credentials and extensions on the ESP, and off with a vTPM that also has a sha1 bank):
//!   predicted from the same inputs — the UKI, the disk's GPT and the ESP's extra files, rebuilt
//!   byte for byte by `make setup` (`scripts/setup.d/55-boot-inputs.sh`), and Debian's VARS
//!   files — PCR 4, 5, 7, 9, 11, 12 and 13 equal the vTPM's in every bank it allocated (sha256
//!   and sha384; sha1 too in all-banks), and the predicted log equals the captured one event by
//!   event in those PCRs;
//! * `systemd-measure` 257 (trixie) for PCR 11 in every phase and bank
//!   (`testdata/boot/systemd-measure-phases.json`, and live), and systemd's own test vectors
//!   (`testdata/systemd-measure/`);
//! * tpm2-tools' Fedora 37 log for PCR 7 of firmware without Secure Boot;
//! * go-eventlog's TDX CCEL for the PCR-to-RTMR mapping and the firmware's constant events.
//!
//! Needs `make setup` (it fails loudly without it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use eventlog::{self, EventLog, EventType, HashAlg};
use measure::boot::{self, BootInputs, Phase, SecureBootConfig, SecureBootState};
use measure::uefi_vars::VarStore;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn testdata(rel: &str) -> PathBuf {
    crate_dir().join("testdata").join(rel)
}

fn tools(rel: &str) -> PathBuf {
    crate_dir().join("../tools").join(rel)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e} (run `make setup`)", path.display()))
}

const OVMF: &str = "ovmf/2025.02-8+deb13u1/usr/share/OVMF";

type Banks = BTreeMap<String, BTreeMap<String, String>>;

/// A fixture boot: its mode, the inputs rebuilt by `make setup`, the firmware flavour.
struct Fixture {
    mode: &'static str,
    /// Which `tools/boot/` inputs it booted (the same UKI and disk serve several vTPMs).
    inputs: &'static str,
    /// The banks its vTPM allocated.
    banks: &'static [HashAlg],
    /// The Debian OVMF build under `tools/`.
    ovmf: &'static str,
    vars: &'static str,
    secure_boot_firmware: bool,
    /// Credentials and extensions next to the UKI (PCR 9, 12, 13).
    extras: bool,
}

const TWO_BANKS: &[HashAlg] = &[HashAlg::Sha256, HashAlg::Sha384];

const FIXTURES: [Fixture; 5] = [
    Fixture {
        mode: "sb-off",
        inputs: "sb-off",
        banks: TWO_BANKS,
        ovmf: OVMF,
        vars: "OVMF_VARS_4M.fd",
        secure_boot_firmware: false,
        extras: false,
    },
    Fixture {
        mode: "sb-on",
        inputs: "sb-on",
        banks: TWO_BANKS,
        ovmf: OVMF,
        vars: "OVMF_VARS_4M.snakeoil.fd",
        secure_boot_firmware: true,
        extras: false,
    },
    Fixture {
        mode: "extras",
        inputs: "extras",
        banks: TWO_BANKS,
        ovmf: OVMF,
        vars: "OVMF_VARS_4M.fd",
        secure_boot_firmware: false,
        extras: true,
    },
    // The sb-off boot with a vTPM that also allocates sha1 (as GCP's and AWS's vTPMs do).
    Fixture {
        mode: "all-banks",
        inputs: "sb-off",
        banks: &[HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384],
        ovmf: OVMF,
        vars: "OVMF_VARS_4M.fd",
        secure_boot_firmware: false,
        extras: false,
    },
    // The sb-off UKI and disk on bookworm's firmware, built with Secure Boot support: setup mode.
    Fixture {
        mode: "sb-setup",
        inputs: "sb-off",
        banks: TWO_BANKS,
        ovmf: "ovmf/2022.11-6+deb12u2/usr/share/OVMF",
        vars: "OVMF_VARS_4M.fd",
        secure_boot_firmware: true,
        extras: false,
    },
];

/// The files of a directory the harness put on the ESP.
fn sidecars(dir: &Path) -> Vec<boot::SidecarFile> {
    let mut v: Vec<boot::SidecarFile> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            boot::SidecarFile { name: e.file_name().into_string().unwrap(), data: std::fs::read(e.path()).unwrap() }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(HashAlg::Sha256.hash(b))
}

/// The `sha256 HASH PATH` line of a fixture's inputs.txt.
fn input_sha256(mode: &str, path: &str) -> String {
    let text = String::from_utf8(read(&testdata(&format!("boot/{mode}/inputs.txt")))).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("sha256 ").and_then(|r| r.strip_suffix(&format!(" {path}"))))
        .unwrap_or_else(|| panic!("no {path} in {mode}/inputs.txt"))
        .to_owned()
}

fn print_diff(d: &eventlog::Diff) -> String {
    serde_json::to_string_pretty(d).unwrap()
}

#[test]
fn fixture_boots_are_predicted_exactly() {
    for f in FIXTURES {
        let mode = f.mode;
        let uki = read(&tools(&format!("boot/{}/uki.efi", f.inputs)));
        let gpt = read(&tools(&format!("boot/{}/gpt.bin", f.inputs)));
        let vars = read(&tools(&format!("{}/{}", f.ovmf, f.vars)));
        assert_eq!(sha256_hex(&vars), input_sha256(mode, &format!("tools/{}/{}", f.ovmf, f.vars)), "{mode}: VARS");
        if mode != "sb-on" {
            // Unsigned, the rebuilt UKI is the booted one byte for byte. (Signed, the signature's
            // time differs; the Authenticode digest the firmware measures does not, which the
            // PCR 4 comparison below shows.)
            assert_eq!(sha256_hex(&uki), input_sha256(mode, "WORK/uki.efi"), "{mode}: the rebuilt UKI");
        }
        let store = VarStore::parse(&vars).unwrap();
        let mut inputs = BootInputs::new(&uki);
        inputs.banks = f.banks.to_vec();
        inputs.secure_boot = SecureBootConfig::from_store(&store, f.secure_boot_firmware);
        inputs.disk = Some(&gpt);
        if f.extras {
            inputs.extra_d = sidecars(&tools(&format!("boot/{}/extra.d", f.inputs)));
            inputs.loader_credentials = sidecars(&tools(&format!("boot/{}/loader-credentials", f.inputs)));
        }
        let p = boot::predict(&inputs).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(p.stub_version, "257.13-1~deb13u1", "{mode}");
        let state = match (f.secure_boot_firmware, store.get("PK", &measure::uefi_vars::EFI_GLOBAL_VARIABLE)) {
            (false, _) => SecureBootState::NotSupported,
            (true, None) => SecureBootState::SetupMode,
            (true, Some(_)) => SecureBootState::Enforcing,
        };
        assert_eq!(p.secure_boot, state, "{mode}");
        assert_eq!(p.pcrs, [4, 5, 7, 9, 11, 12, 13], "{mode}");

        // Event by event against the captured log.
        let captured = eventlog::parse(&read(&testdata(&format!("boot/{mode}/eventlog.bin")))).unwrap();
        let d = p.diff(&captured).unwrap();
        assert!(d.is_empty(), "{mode}: the prediction departs from the real boot:\n{}", print_diff(&d));

        // Values against the vTPM.
        let real: Banks = serde_json::from_slice(&read(&testdata(&format!("boot/{mode}/pcrs.json")))).unwrap();
        let names: Vec<&str> = f.banks.iter().map(|b| b.name()).collect();
        assert_eq!(real.keys().map(String::as_str).collect::<Vec<_>>(), names, "{mode}: the vTPM's banks");
        let predicted = p.pcrs_at(Phase::Stub);
        assert_eq!(predicted.len(), f.banks.len(), "{mode}: a prediction per bank");
        for (alg, regs) in &predicted {
            for (pcr, value) in regs {
                assert_eq!(hex::encode(value), real[alg.name()][&pcr.to_string()], "{mode}: {alg} PCR {pcr}");
            }
        }
        // The written log replays to the same values.
        let written = eventlog::write(&p.eventlog()).unwrap();
        let replayed = eventlog::replay(&eventlog::parse(&written).unwrap()).unwrap();
        for (alg, regs) in &predicted {
            for (pcr, value) in regs {
                let want = if value.iter().all(|b| *b == 0) { None } else { Some(value.as_slice()) };
                assert_eq!(replayed.value(*alg, *pcr), want, "{mode}: {alg} PCR {pcr} replayed");
            }
        }
        // SB enforcing: no kernel image in PCR 4, an authority event in PCR 7; otherwise (off,
        // setup mode) the reverse.
        let count =
            |pcr: u32, t: EventType| p.events.iter().filter(|e| e.event.pcr == pcr && e.event.event_type == t).count();
        let sb = usize::from(state == SecureBootState::Enforcing);
        assert_eq!(count(4, EventType::EV_EFI_BOOT_SERVICES_APPLICATION), 2 - sb, "{mode}");
        assert_eq!(count(7, EventType::EV_EFI_VARIABLE_AUTHORITY), sb, "{mode}");
        // Extras: credentials, global credentials and the confext in PCR 12, the sysext in 13.
        let extras = usize::from(f.extras);
        assert_eq!(count(12, EventType::EV_IPL), 3 * extras, "{mode}");
        assert_eq!(count(13, EventType::EV_IPL), extras, "{mode}");
    }
}

/// The phase of a `systemd-measure --json` row (no "phase" key: none).
fn phase_of(row: &serde_json::Value) -> Phase {
    row.get("phase").and_then(|p| p.as_str()).map_or(Phase::Stub, |p| p.parse().unwrap())
}

/// systemd-measure's PCR 11 for the fixture UKI, every phase and bank
/// (`testdata/boot/systemd-measure-phases.json`, from `systemd-measure-phases.gen.sh`).
#[test]
fn pcr11_phases_equal_systemd_measure() {
    let fixture: serde_json::Value =
        serde_json::from_slice(&read(&testdata("boot/systemd-measure-phases.json"))).unwrap();
    let uki = read(&tools("boot/sb-off/uki.efi"));
    let p = boot::predict(&BootInputs::new(&uki)).unwrap();
    let phases = p.pcr11_phases();
    let mut checked = 0;
    for (bank, rows) in fixture.as_object().unwrap() {
        let alg: HashAlg = bank.parse().unwrap();
        for row in rows.as_array().unwrap() {
            let phase = phase_of(row);
            assert_eq!(hex::encode(&phases[&alg][&phase]), row["hash"].as_str().unwrap(), "{bank} {phase}");
            assert_eq!(p.pcr11(phase, alg).map(hex::encode).as_deref(), row["hash"].as_str(), "{bank} {phase}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15, "3 banks × 5 phases");
}

/// The same, live: systemd-measure 257 from `tools/trixie-root` on the sections objcopy
/// extracts from the rebuilt UKI.
#[test]
fn pcr11_phases_equal_systemd_measure_live() {
    let uki_path = tools("boot/sb-off/uki.efi");
    let uki = read(&uki_path);
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["/usr/lib/systemd/systemd-measure".to_string(), "calculate".into()];
    for s in ["linux", "osrel", "cmdline", "initrd", "uname", "sbat"] {
        let out = dir.path().join(s);
        let st = Command::new("objcopy")
            .args(["-O", "binary", &format!("--only-section=.{s}")])
            .arg(&uki_path)
            .arg(&out)
            .status()
            .expect("running objcopy (run `make setup`)");
        assert!(st.success(), "objcopy .{s}");
        args.push(format!("--{s}={}", out.display()));
    }
    for b in ["sha1", "sha256", "sha384"] {
        args.push(format!("--bank={b}"));
    }
    for phase in Phase::ALL {
        args.push(format!("--phase={}", phase.systemd_measure_phase()));
    }
    args.push("--json=short".into());
    let o = Command::new(crate_dir().join("../scripts/in-trixie"))
        .args(&args)
        .output()
        .expect("running scripts/in-trixie (run `make setup`)");
    assert!(o.status.success(), "systemd-measure: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = boot::predict(&BootInputs::new(&uki)).unwrap();
    for (bank, rows) in v.as_object().unwrap() {
        let alg: HashAlg = bank.parse().unwrap();
        for row in rows.as_array().unwrap() {
            let phase = phase_of(row);
            assert_eq!(p.pcr11(phase, alg).map(hex::encode).as_deref(), row["hash"].as_str(), "{bank} {phase}");
        }
    }
}

/// systemd's TEST-70 vectors: `systemd-measure calculate --linux=tpmdata1 --initrd=tpmdata2`,
/// with the values published with the vectors (sha256, sha384; `--phase=foo` sha256) and the
/// rest from systemd-measure 257 (`testdata/systemd-measure/expected.json`).
#[test]
fn systemd_measure_vectors() {
    let linux = read(&testdata("systemd-measure/tpmdata1"));
    let initrd = read(&testdata("systemd-measure/tpmdata2"));
    let sections: [(&str, &[u8]); 2] = [(".initrd", &initrd), (".linux", &linux)];
    let published: [(&[&str], HashAlg, &str); 3] = [
        (&[], HashAlg::Sha256, "37b48bd0b222394dbe3cceff2fca4660c4b0a90ae9369ec90b42f14489989c13"),
        (
            &[],
            HashAlg::Sha384,
            "5573f9b2caf55b1d0a6a701f890662d682af961899f0419cf1e2d5ea4a6a68c1f25bd4f5b8a0865eeee82af90f5cb087",
        ),
        (&["foo"], HashAlg::Sha256, "21c49c1242042649e09c156546fd7d425ccc3c67359f840507b30be4e0f6f699"),
    ];
    for (words, alg, want) in published {
        assert_eq!(hex::encode(boot::pcr11_from_sections(&sections, words, alg)), want, "{alg} {words:?}");
    }
    let oracle: serde_json::Value = serde_json::from_slice(&read(&testdata("systemd-measure/expected.json"))).unwrap();
    let mut checked = 0;
    for (bank, rows) in oracle.as_object().unwrap() {
        let alg: HashAlg = bank.parse().unwrap();
        for row in rows.as_array().unwrap() {
            let words: Vec<&str> = row.get("phase").and_then(|p| p.as_str()).into_iter().collect();
            let got = hex::encode(boot::pcr11_from_sections(&sections, &words, alg));
            assert_eq!(got, row["hash"].as_str().unwrap(), "{bank} {words:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

/// PCR 7 of firmware without Secure Boot and an empty store, against tpm2-tools' Fedora 37
/// OVMF log (another OVMF build): the same five empty variables and the separator.
#[test]
fn pcr7_without_secure_boot_equals_fedora_ovmf() {
    let log =
        eventlog::parse(&std::fs::read(crate_dir().join("../eventlog/testdata/event-sd-boot-fedora37.bin")).unwrap())
            .unwrap();
    let uki = read(&tools("boot/sb-off/uki.efi"));
    let mut inputs = BootInputs::new(&uki);
    inputs.banks = vec![HashAlg::Sha256];
    let p = boot::predict(&inputs).unwrap();
    let ours: Vec<_> = p.events.iter().filter(|e| e.event.pcr == 7).map(|e| e.event.clone()).collect();
    let theirs: Vec<_> = log.events.iter().filter(|e| e.pcr == 7).cloned().collect();
    assert_eq!(ours, theirs);
}

/// The TDX mapping against go-eventlog's GCE TDX CCEL: every firmware and boot-loader event
/// lands in the RTMR our PCR mapping gives for the PCR the TCG PC Client PFP assigns it, and the
/// firmware's constant events have the digests the model predicts. The vector's firmware
/// predates edk2's fix that moved the ReadyToBoot separator to RTMR1 (it logs a second one into
/// RTMR0, the "dupe separator"), so separators are checked for their digest only.
#[test]
fn tdx_mapping_matches_the_ccel_vector() {
    let log = eventlog::parse(
        &std::fs::read(crate_dir().join("../eventlog/testdata/cos-113-intel-tdx-dupe-separator-unpadded.bin")).unwrap(),
    )
    .unwrap();
    // The PFP's PCR for each event type in this log (shim's and grub's EV_IPL: 8, 9 or 14).
    let pcr_of = |t: EventType| match t {
        EventType::EV_EFI_HANDOFF_TABLES2
        | EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2
        | EventType::EV_PLATFORM_CONFIG_FLAGS
        | EventType::EV_EFI_VARIABLE_BOOT => Some(1),
        EventType::EV_EFI_VARIABLE_DRIVER_CONFIG | EventType::EV_EFI_VARIABLE_AUTHORITY => Some(7),
        EventType::EV_EFI_BOOT_SERVICES_APPLICATION => Some(4),
        EventType::EV_EFI_GPT_EVENT => Some(5),
        EventType::EV_IPL => Some(9),
        _ => None,
    };
    let mut checked = 0;
    for e in &log.events {
        if let Some(pcr) = pcr_of(e.event_type) {
            assert_eq!(boot::tdx_mr_index(pcr), Some(e.pcr), "{} (PCR {pcr})", e.event_type);
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");

    // Our TD prediction for the fixture UKI: RTMR1 has the vector's RTMR1 skeleton plus the
    // separator, and the constant events' digests are the vector's.
    let uki = read(&tools("boot/sb-off/uki.efi"));
    let gpt = read(&tools("boot/sb-off/gpt.bin"));
    let mut inputs = BootInputs::new(&uki);
    inputs.disk = Some(&gpt);
    let td = boot::predict_tdx(&inputs).unwrap();
    let sha384 = HashAlg::Sha384.id();
    let skeleton = |events: &mut dyn Iterator<Item = &eventlog::Event>| -> Vec<EventType> {
        let mut v: Vec<EventType> = events.map(|e| e.event_type).collect();
        v.dedup();
        v
    };
    let ours: Vec<_> = td.events.iter().map(|e| &e.event).filter(|e| e.pcr == 2).collect();
    let theirs: Vec<_> = log.events.iter().filter(|e| e.pcr == 2).collect();
    assert_eq!(
        skeleton(&mut ours.iter().copied().filter(|e| e.event_type != EventType::EV_SEPARATOR)),
        skeleton(&mut theirs.iter().copied()),
        "RTMR1 event types"
    );
    for (t, n) in [(EventType::EV_EFI_ACTION, 3), (EventType::EV_SEPARATOR, 1)] {
        let a: Vec<_> = ours.iter().filter(|e| e.event_type == t).map(|e| (e.data.clone(), e.digest(sha384))).collect();
        let b: Vec<_> =
            log.events.iter().filter(|e| e.event_type == t).map(|e| (e.data.clone(), e.digest(sha384))).collect();
        assert_eq!(a.len(), n, "{t}");
        for x in &a {
            assert!(b.contains(x), "{t}: our {x:?} is not in the vector");
        }
    }
    // RTMR2 = the stub's section events then the kernel's two PCR 9 events, all in MR index 3.
    let rtmr2: Vec<_> = td.events.iter().filter(|e| e.event.pcr == 3).collect();
    assert_eq!(rtmr2.len(), 12 + 2);
    let fold = rtmr2
        .iter()
        .fold(HashAlg::Sha384.zeros(), |acc, e| HashAlg::Sha384.extend(&acc, e.event.digest(sha384).unwrap()));
    assert_eq!(fold, td.rtmr2);
    // The RTMR2 events are the TPM prediction's PCR 11 and PCR 9 events, in the stub's order.
    let tpm = boot::predict(&BootInputs { banks: vec![HashAlg::Sha384], ..inputs.clone() }).unwrap();
    let tpm_events: Vec<_> = tpm
        .events
        .iter()
        .filter(|e| [9, 11].contains(&e.event.pcr))
        .map(|e| (e.event.event_type, e.event.digests.clone()))
        .collect();
    let td_events: Vec<_> = rtmr2.iter().map(|e| (e.event.event_type, e.event.digests.clone())).collect();
    assert_eq!(td_events, tpm_events);
    let _: EventLog = td.eventlog();
}

/// The boot entry's LoadOptions, per systemd 257's `process_arguments` and
/// `settle_command_line` (source-derived: OVMF's automatic boot entries pass none, so no real
/// boot here exercises them; the event encoding is checked against a real log in
/// `stub::tests::load_options_event_encoding_matches_a_real_log`).
#[test]
fn load_options_rules() {
    let uki = read(&tools("boot/sb-off/uki.efi"));
    let signed = read(&tools("boot/sb-on/uki.efi"));
    let snakeoil = VarStore::parse(&read(&tools(&format!("{OVMF}/OVMF_VARS_4M.snakeoil.fd")))).unwrap();
    let u16z = |s: &str| -> Vec<u8> { s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect() };
    let pcr12 = |p: &boot::Prediction| -> Vec<Vec<u8>> {
        p.events.iter().filter(|e| e.event.pcr == 12).map(|e| e.event.data.clone()).collect()
    };
    let load_options_digest = |p: &boot::Prediction| -> Vec<u8> {
        let e = p.events.iter().find(|e| e.event.pcr == 9).expect("the LoadOptions event comes first");
        e.event.digest(HashAlg::Sha256.id()).unwrap().to_vec()
    };
    let sha256 = |b: &[u8]| HashAlg::Sha256.hash(b);
    let predict = |uki: &[u8], lo: Option<&str>, sb: bool| {
        let mut i = BootInputs::new(uki);
        i.banks = vec![HashAlg::Sha256];
        i.load_options = lo.map(str::to_owned);
        if sb {
            i.secure_boot = SecureBootConfig::from_store(&snakeoil, true);
        }
        boot::predict(&i)
    };
    // Secure Boot off: the options win (mangled), measured into PCR 12 and handed to Linux.
    let p = predict(&uki, Some("  quiet\tsplash "), false).unwrap();
    assert_eq!(pcr12(&p), [u16z("quiet splash")]);
    assert_eq!(load_options_digest(&p), sha256(&u16z("quiet splash")));
    // Secure Boot on and a .cmdline in the UKI: ignored, the .cmdline is used, PCR 12 stays 0.
    let p = predict(&signed, Some("quiet splash"), true).unwrap();
    assert!(pcr12(&p).is_empty());
    assert_eq!(load_options_digest(&p), sha256(&u16z("console=ttyS0 panic=-1 loglevel=4")));
    // Options starting with a control character are ignored; empty ones too.
    for lo in ["\u{1}quiet", "", "   "] {
        let p = predict(&uki, Some(lo), false).unwrap();
        assert!(pcr12(&p).is_empty(), "{lo:?}");
    }
    // "@N " selects a profile; this UKI has none beyond the implied profile 0.
    assert!(predict(&uki, Some("@0 quiet"), false).is_ok());
    assert!(matches!(
        predict(&uki, Some("@1 quiet"), false),
        Err(boot::BootError::NoSuchProfile { profile: 1, profiles: 0 })
    ));
}
