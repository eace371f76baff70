//! `nodeimg attest check` against real and published evidence.
//!
//! * The real boot of `measure/testdata/boot/sb-off` (QEMU + OVMF + swtpm; event log and PCRs read
//!   by the booted kernel) against a release of that image: the bundle's enforced PCRs and its
//!   predicted event log are `nodeimg measure pcrs`' prediction for the booted UKI (rebuilt by
//!   `make setup`), the firmware-owned PCRs 0–3 and 6 are added as observed from the boot, as a
//!   release engineer would (`release --observed`). The evidence passes, from the files and from a
//!   swtpm the test extends with the log's events; against the release of the same UKI with
//!   another command line (`nodeimg uki set-cmdline`) it fails, naming the `.cmdline` event.
//! * Public SEV-SNP reports and TDX quotes (`attest/testdata`) against a bundle whose
//!   reference values are the measurements their sources state (`expected.json` there).
//! * Malformed reports and quotes: exit 2, naming the file and what is wrong.
//!
//! Needs `make setup` (the boot inputs under tools/, swtpm, tpm2-tools); fails loudly without.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::release::{build_output, json_of, keyed_dir, need, release, s, vtpm_reference, BOOTS};
use common::swtpm::{extend_spec, Swtpm};
use common::{assert_fails, nodeimg, tool, Run};
use serde_json::{json, Value};

/// The firmware-owned PCRs a release engineer records from a running instance.
const OBSERVED: [&str; 5] = ["0", "1", "2", "3", "6"];
/// The booted UKI's command line, and the other image's.
const CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=4";
const OTHER_CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=7";

fn boot(file: &str) -> PathBuf {
    need(&format!("measure/testdata/boot/sb-off/{file}"))
}

fn evidence(file: &str) -> PathBuf {
    need(&format!("attest/testdata/{file}"))
}

/// Bundles shared by the tests (built once per test run).
struct Fixture {
    dir: PathBuf,
    /// The release of the booted UKI.
    this_image: PathBuf,
    /// The release of the same UKI with [`OTHER_CMDLINE`].
    other_cmdline: PathBuf,
    /// Platforms `snp-turin` and `tdx-trustee` with the measurements the public sources state,
    /// and `tdx-cos` without reference values.
    published: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let d = keyed_dir("attest_cli");

        // The firmware-owned PCRs, as read from the running instance.
        let real: Value = serde_json::from_slice(&fs::read(boot("pcrs.json")).unwrap()).unwrap();
        let observed: Value = ["sha256", "sha384"]
            .iter()
            .map(|b| (b.to_string(), OBSERVED.iter().map(|i| (i.to_string(), real[b][i].clone())).collect()))
            .collect::<serde_json::Map<String, Value>>()
            .into();
        fs::write(d.join("observed.json"), serde_json::to_vec(&observed).unwrap()).unwrap();

        let inputs = fs::read_to_string(boot("inputs.txt")).unwrap();
        assert!(inputs.contains(&format!("ukify-cmdline {CMDLINE}\n")), "the booted UKI's command line");
        let uki = need("tools/boot/sb-off/uki.efi");
        let uki_bytes = fs::read(&uki).unwrap();
        let sb_off = &BOOTS[0];
        assert_eq!(sb_off.mode, "sb-off", "the real boot these tests replay");
        let a = vtpm_reference(&d, sb_off, &uki, "a");
        build_output(&d.join("build-a"), "1.0.0", &[("qemu-vtpm", a, vec![("uki.efi", uki_bytes)])]);
        let this_image = release(&d, "build-a", "1.0.0", &["--observed", "qemu-vtpm=observed.json"]);

        let other = d.join("other.efi");
        let run = nodeimg(&d, &["uki", "set-cmdline", s(&uki), "--cmdline", OTHER_CMDLINE, "-o", s(&other)]);
        assert_eq!(run.code, 0, "{run:?}");
        let b = vtpm_reference(&d, sb_off, &other, "b");
        build_output(&d.join("build-b"), "1.0.1", &[("qemu-vtpm", b, vec![("uki.efi", fs::read(&other).unwrap())])]);
        let other_cmdline = release(&d, "build-b", "1.0.1", &["--observed", "qemu-vtpm=observed.json"]);

        // What the sources state (expected.json), not what our parsers read.
        let stated: Value = serde_json::from_slice(&fs::read(evidence("expected.json")).unwrap()).unwrap();
        let turin = &stated["snp-report-v5-turin.bin"]["expect"];
        let quote = &stated["tdx-quote-v4-trustee.dat"]["expect"];
        // The VM shape fields are placeholders: the sources do not state them.
        let snp = json!({"attestation_variant": "gcp-sev-snp", "snp": [{
            "vcpus": 1, "vcpu_sig": 0, "vmm_type": "qemu", "guest_features": 1,
            "launch_digest": turin["measurement"]}], "snp_policy": {"smt": true}});
        // The same release on hosts that must run it with SMT off.
        let mut snp_no_smt = snp.clone();
        snp_no_smt["snp_policy"]["smt"] = json!(false);
        let rtmr = quote["rtmr"].as_array().unwrap();
        let tdx = json!({"attestation_variant": "qemu-tdx", "tdx": {
            "mrtd": quote["mr_td"],
            "rtmr": {"0": rtmr[0], "1": rtmr[1], "2": rtmr[2], "3": rtmr[3]}}});
        let small = || vec![("disk.raw", b"disk".to_vec())];
        // A TD platform without reference values, for the quote/CCEL pair of go-tdx-guest.
        let tdx_cos = json!({"attestation_variant": "qemu-tdx"});
        build_output(
            &d.join("build-p"),
            "2.0.0",
            &[
                ("snp-turin", snp, small()),
                ("snp-turin-no-smt", snp_no_smt, small()),
                ("tdx-cos", tdx_cos, small()),
                ("tdx-trustee", tdx, small()),
            ],
        );
        let published = release(&d, "build-p", "2.0.0", &[]);
        Fixture { dir: d, this_image, other_cmdline, published }
    })
}

/// `nodeimg attest check --bundle B --pubkey k.pub --platform P ARGS…` in the fixture directory.
fn check(bundle: &Path, platform: &str, args: &[&str]) -> Run {
    let f = fixture();
    let mut all = vec!["attest", "check", "--bundle", s(bundle), "--pubkey", "k.pub", "--platform", platform];
    all.extend_from_slice(args);
    nodeimg(&f.dir, &all)
}

/// A check of a `--json` run.
#[derive(Debug)]
struct Line {
    value: String,
    status: String,
    detail: String,
    /// What the first differing event means, if the check carries one.
    meaning: Option<String>,
}

/// The checks of a `--json` run.
fn checks(run: &Run) -> Vec<Line> {
    json_of(run)["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Line {
            value: c["value"].as_str().unwrap().to_owned(),
            status: c["status"].as_str().unwrap().to_owned(),
            detail: c["detail"].as_str().unwrap().to_owned(),
            meaning: c["events"]["meaning"].as_str().map(str::to_owned),
        })
        .collect()
}

fn status_of<'a>(all: &'a [Line], value: &str) -> &'a Line {
    all.iter().find(|c| c.value == value).unwrap_or_else(|| panic!("no check {value}: {all:#?}"))
}

#[test]
fn the_real_boot_passes_against_its_release() {
    let f = fixture();
    let (log, pcrs) = (boot("eventlog.bin"), boot("pcrs.json"));
    for args in [vec!["--eventlog", s(&log), "--pcrs", s(&pcrs)], vec!["--pcrs", s(&pcrs)], vec!["--eventlog", s(&log)]]
    {
        let mut json_args = args.clone();
        json_args.push("--json");
        let run = check(&f.this_image, "qemu-vtpm", &json_args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        let all = checks(&run);
        for bank in ["sha256", "sha384"] {
            for pcr in ["4", "5", "7", "9", "11", "12", "13"] {
                assert_eq!(status_of(&all, &format!("PCR {pcr} ({bank})")).status, "ok", "{args:?} {bank} {pcr}");
            }
            for pcr in OBSERVED {
                let c = status_of(&all, &format!("PCR {pcr} ({bank})"));
                assert_eq!(
                    (c.status.as_str(), c.detail.as_str()),
                    ("observed-only", "firmware-owned; equals the value observed at release")
                );
            }
            let c11 = status_of(&all, &format!("PCR 11 ({bank})"));
            assert_eq!(c11.detail, "before any boot phase (the predicted event log)", "nothing ran systemd-pcrphase");
        }
        assert!(all.iter().all(|c| c.status != "mismatch"), "{all:?}");
        let v = json_of(&run);
        assert_eq!(
            (v["ok"].as_bool(), v["image"].as_str(), v["version"].as_str(), v["authenticity"].as_str()),
            (Some(true), Some("boot-capture"), Some("1.0.0"), Some("unauthenticated"))
        );
    }
    // The text form: one line per value, then a verdict.
    let run = check(&f.this_image, "qemu-vtpm", &["--eventlog", s(&log), "--pcrs", s(&pcrs)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("ok ") || l.starts_with("observed-only ")).count(),
        48,
        "{run:?}"
    );
    assert!(run.stdout.contains("note: the event log replays to the pcrs file's PCRs (sha256, sha384)"), "{run:?}");
    // PCR values from a file, no quote: compared, but never a plain OK.
    assert!(run.stdout.contains("UNAUTHENTICATED: every enforced value matches (14 ok, 34 observed only)"), "{run:?}");
    assert!(run.stdout.contains("note: unauthenticated: the PCR values (pcrs file)"), "{run:?}");
    assert!(!run.stdout.contains("\nOK"), "{run:?}");
}

#[test]
fn another_cmdline_fails_and_names_the_cmdline_event() {
    let f = fixture();
    let (log, pcrs) = (boot("eventlog.bin"), boot("pcrs.json"));
    let run = check(&f.other_cmdline, "qemu-vtpm", &["--eventlog", s(&log), "--pcrs", s(&pcrs), "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let all = checks(&run);
    let bad: Vec<&str> = all.iter().filter(|c| c.status == "mismatch").map(|c| c.value.as_str()).collect();
    assert_eq!(
        bad,
        ["PCR 4 (sha256)", "PCR 9 (sha256)", "PCR 11 (sha256)", "PCR 4 (sha384)", "PCR 9 (sha384)", "PCR 11 (sha384)"]
    );
    // Each register's first differing event, and what it means.
    let meaning = |v: &str| status_of(&all, v).meaning.clone().unwrap_or_default();
    assert_eq!(meaning("PCR 11 (sha256)"), "The UKI's .cmdline section differs");
    assert_eq!(
        meaning("PCR 9 (sha256)"),
        "The kernel command line (LoadOptions, as the Linux EFI stub received it) differs"
    );
    assert_eq!(
        meaning("PCR 4 (sha256)"),
        "The UEFI image \\EFI\\BOOT\\BOOTX64.EFI (Authenticode digest) differs",
        "{all:?}"
    );

    let run = check(&f.other_cmdline, "qemu-vtpm", &["--eventlog", s(&log), "--pcrs", s(&pcrs)]);
    assert_fails(
        &run,
        1,
        &["mismatch", "PCR 11 (sha256)", "The UKI's .cmdline section differs", "FAIL: 6 mismatch(es)"],
    );
    // The .cmdline event is shown with its event number and offset in the node's log.
    assert!(run.stdout.contains("EV_IPL \".cmdline\""), "{run:?}");
    // Without the log the PCRs still fail, unexplained.
    let run = check(&f.other_cmdline, "qemu-vtpm", &["--pcrs", s(&pcrs), "-q"]);
    assert_fails(&run, 1, &["PCR 11 (sha384)"]);
    assert!(!run.stdout.contains("observed-only"), "quiet shows mismatches only: {run:?}");
}

/// Extends every event of the captured log into a swtpm: the TPM then holds what the booted
/// node's vTPM held (for the PCRs the log accounts for).
fn replay_into(tpm: &Swtpm, extra: &[String]) {
    let log = eventlog::parse(&fs::read(boot("eventlog.bin")).unwrap()).unwrap();
    let mut specs: Vec<String> = log.events.iter().filter(|e| e.is_extended()).map(extend_spec).collect();
    specs.extend_from_slice(extra);
    tpm.extend(&specs);
}

#[test]
fn a_live_tpm() {
    let f = fixture();
    let log = boot("eventlog.bin");
    let tpm = Swtpm::start("sha256,sha384");
    replay_into(&tpm, &[]);
    let tcti = tpm.tcti();
    let run = check(&f.this_image, "qemu-vtpm", &["--tpm", &tcti, "--eventlog", s(&log)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("note: the event log replays to the tpm's PCRs (sha256, sha384)"), "{run:?}");
    assert!(run.stdout.contains("[tpm]"), "{run:?}");
    let run = check(&f.this_image, "qemu-vtpm", &["--tpm", &tcti]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = check(&f.other_cmdline, "qemu-vtpm", &["--tpm", &tcti, "--eventlog", s(&log)]);
    assert_fails(&run, 1, &["The UKI's .cmdline section differs"]);

    // One more measurement the log does not hold: the log no longer tells the TPM's story.
    let tpm = Swtpm::start("sha256,sha384");
    replay_into(&tpm, &[format!("9:sha256={},sha384={}", "11".repeat(32), "22".repeat(48))]);
    let run = check(&f.this_image, "qemu-vtpm", &["--tpm", &tpm.tcti(), "--eventlog", s(&log), "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let all = checks(&run);
    let bad: Vec<&str> = all.iter().filter(|c| c.status == "mismatch").map(|c| c.value.as_str()).collect();
    assert_eq!(bad, ["PCR 9 (sha256)", "PCR 9 (sha384)", "event log PCR 9 (sha256)", "event log PCR 9 (sha384)"]);

    // No TPM there: an input error.
    drop(tpm);
    let run = check(&f.this_image, "qemu-vtpm", &["--tpm", "swtpm:host=127.0.0.1,port=1"]);
    assert_fails(&run, 2, &["connecting to the TPM at swtpm:host=127.0.0.1,port=1"]);
}

#[test]
fn published_snp_reports_and_tdx_quotes() {
    let f = fixture();
    // The Turin report's MEASUREMENT is the bundle's launch digest: ok, with the other fields
    // reported for the record.
    let run = check(&f.published, "snp-turin", &["--snp-report", s(&evidence("snp-report-v5-turin.bin")), "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let all = checks(&run);
    assert_eq!(status_of(&all, "SNP MEASUREMENT").status, "ok");
    for v in ["SNP POLICY", "SNP REPORT_DATA", "SNP HOST_DATA", "SNP REPORTED_TCB"] {
        assert_eq!(status_of(&all, v).status, "observed-only", "{v}");
    }
    // Not debuggable, VMPL 0, no migration agent: checks that pass.
    for v in ["SNP POLICY.DEBUG", "SNP VMPL", "SNP POLICY.MIGRATE_MA", "SNP POLICY.SMT"] {
        assert_eq!(status_of(&all, v).status, "ok", "{v}");
    }
    // Its policy (0x30000) allows SMT, which a release for SMT-off hosts forbids.
    let no_smt = check(&f.published, "snp-turin-no-smt", &["--snp-report", s(&evidence("snp-report-v5-turin.bin"))]);
    assert_fails(&no_smt, 1, &["mismatch       SNP POLICY.SMT", "which the release forbids"]);
    // A report from VMPL 0 is not one from VMPL 2 (a paravisor's guest).
    let vmpl2 =
        check(&f.published, "snp-turin", &["--snp-report", s(&evidence("snp-report-v5-turin.bin")), "--vmpl", "2"]);
    assert_fails(&vmpl2, 1, &["mismatch       SNP VMPL", "requested from VMPL 0, not 2"]);
    let v = json_of(&run);
    assert_eq!(v["snp_report"]["version"], 5);
    assert_eq!(v["snp_report"]["reported_tcb"]["microcode"], 71);
    assert_eq!(v["authenticity"], "unauthenticated");
    assert!(v["notes"].to_string().contains("unauthenticated: the SNP report: its signature"), "{v}");
    // Another report's measurement is not this release's.
    let run = check(&f.published, "snp-turin", &["--snp-report", s(&evidence("snp-report-v2-genoa.bin"))]);
    assert_fails(&run, 1, &["SNP MEASUREMENT", "matches none of the bundle's 1 VM shape(s)"]);

    // The trustee v4 quote's MRTD and RTMRs are the bundle's, but it is a debug TD: that alone
    // fails (exit 1), `-q` included, unless --allow-debug accepts it.
    let trustee = evidence("tdx-quote-v4-trustee.dat");
    for quiet in [&[][..], &["-q"][..]] {
        let mut args = vec!["--tdx-quote", s(&trustee)];
        args.extend_from_slice(quiet);
        let run = check(&f.published, "tdx-trustee", &args);
        assert_fails(&run, 1, &["TDX TDATTRIBUTES.DEBUG", "its memory is readable by the host", "FAIL: 1 mismatch"]);
    }
    let run = check(&f.published, "tdx-trustee", &["--tdx-quote", s(&trustee), "--allow-debug", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let all = checks(&run);
    for v in ["TDX MRTD", "TDX RTMR0", "TDX RTMR1", "TDX RTMR2", "TDX RTMR3"] {
        assert_eq!(status_of(&all, v).status, "ok", "{v}");
    }
    for v in ["TDX XFAM", "TDX MRCONFIGID", "TDX TDATTRIBUTES"] {
        assert_eq!(status_of(&all, v).status, "observed-only", "{v}");
    }
    assert_eq!(status_of(&all, "TDX TDATTRIBUTES.DEBUG").status, "observed-only");
    // The go-tdx-guest quote (another TD) and a v5 quote fail on MRTD.
    for q in ["tdx-quote-v4-spr.dat", "tdx-quote-v5-trustee.dat"] {
        let run = check(&f.published, "tdx-trustee", &["--tdx-quote", s(&evidence(q))]);
        assert_fails(&run, 1, &["mismatch       TDX MRTD"]);
    }
    // An SNP report against a platform without SNP values, whose TDX registers it cannot show:
    // nothing of the platform is checked, and that is a mismatch, never a pass (any genuine
    // report of any guest would otherwise pass for it). That report was also requested from
    // VMPL 1 (a paravisor below the guest): refused at the default VMPL 0, not with --vmpl 1.
    let milan = evidence("snp-report-v3-milan-vlek.bin");
    let run = check(&f.published, "tdx-trustee", &["--snp-report", s(&milan)]);
    assert_fails(&run, 1, &["mismatch       SNP VMPL", "requested from VMPL 1, not 0"]);
    let run = check(&f.published, "tdx-trustee", &["--snp-report", s(&milan), "--vmpl", "1"]);
    assert_fails(
        &run,
        1,
        &[
            "mismatch       the platform's reference values",
            "its TDX measurement registers, and the evidence has none",
            "FAIL: 1 mismatch",
        ],
    );
    assert!(run.stdout.contains("observed-only  SNP MEASUREMENT"), "{run:?}");
    // Nor does a genuine SNP report pass for a vTPM platform.
    let run = check(&f.this_image, "qemu-vtpm", &["--snp-report", s(&evidence("snp-report-v5-turin.bin"))]);
    assert_fails(&run, 1, &["the platform's reference values", "its vTPM PCRs, and the evidence has none"]);
}

#[test]
fn a_tds_quote_and_its_cc_event_log() {
    let f = fixture();
    let (quote, ccel) = (evidence("tdx-quote-v4-cos.dat"), evidence("ccel-cos.bin"));
    // The log replays to the quote's RTMRs (as go-tdx-guest's test says): no contradiction, and
    // without reference values nothing is enforced.
    let run = check(&f.published, "tdx-cos", &["--tdx-quote", s(&quote), "--eventlog", s(&ccel), "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let all = checks(&run);
    for i in 0..4 {
        let c = status_of(&all, &format!("TDX RTMR{i}"));
        assert_eq!((c.status.as_str(), c.detail.as_str()), ("observed-only", "no reference value"));
    }
    assert!(!all.iter().any(|c| c.value.starts_with("CCEL")), "{all:?}");
    let notes = json_of(&run)["notes"].to_string();
    assert!(notes.contains("the CC event log replays to the quote's RTMR0, RTMR1, RTMR2"), "{notes}");
    // The log alone gives the RTMRs it extends.
    let run = check(&f.published, "tdx-cos", &["--eventlog", s(&ccel)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("observed-only  TDX RTMR1"), "{run:?}");
    assert!(run.stdout.contains("[event log]"), "{run:?}");
    // One digest changed in an RTMR1 event: the log no longer accounts for the quote's RTMR1.
    let log = eventlog::parse(&fs::read(&ccel).unwrap()).unwrap();
    let i = log.events.iter().position(|e| e.pcr == 2 && e.is_extended()).expect("an RTMR1 event");
    let mut bytes = fs::read(&ccel).unwrap();
    // TCG_PCR_EVENT2: index, type, digest count (u32 each), then the SHA-384 algorithm id (u16).
    bytes[log.offsets[i] as usize + 14] ^= 1;
    let tampered = f.dir.join("ccel-tampered.bin");
    fs::write(&tampered, bytes).unwrap();
    let run = check(&f.published, "tdx-cos", &["--tdx-quote", s(&quote), "--eventlog", s(&tampered)]);
    assert_fails(
        &run,
        1,
        &["mismatch       CCEL RTMR1", "the CC event log replays to another value than the quote reports"],
    );
}

#[test]
fn unusable_input_exits_2() {
    let f = fixture();
    let d = &f.dir;
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        fs::write(&p, bytes).unwrap();
        p
    };
    let turin = fs::read(evidence("snp-report-v5-turin.bin")).unwrap();
    let quote = fs::read(evidence("tdx-quote-v5-trustee.dat")).unwrap();
    let mut v6 = turin.clone();
    v6[0] = 6;
    let mut q3 = quote.clone();
    q3[0] = 3;
    type Case<'a> = (&'a str, PathBuf, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "--snp-report",
            write("short.bin", &turin[..1000]),
            vec!["short.bin: not an SEV-SNP attestation report", "1000 bytes"],
        ),
        ("--snp-report", write("v6.bin", &v6), vec!["v6.bin", "report version 6 (offset 0x0)"]),
        ("--tdx-quote", write("short.dat", &quote[..700]), vec!["short.dat: not a TDX quote", "bytes 0x36..0x2be"]),
        ("--tdx-quote", write("v3.dat", &q3), vec!["v3.dat", "quote version 3 (offset 0x0)"]),
        (
            "--tdx-quote",
            evidence("snp-report-v5-turin.bin"),
            vec!["not a TDX quote", "TEE type 0x0 (offset 0x4) is not TDX"],
        ),
        ("--eventlog", write("log.bin", b"not a log"), vec!["log.bin"]),
        (
            "--pcrs",
            write("pcrs.json", br#"{"banks": {"sha256": {"4": "00"}}}"#),
            vec!["pcrs.json: sha256 PCR 4 has 1 bytes"],
        ),
        (
            "--pcrs",
            write("pcrs2.json", br#"{"sha256": {"24": "00"}}"#),
            vec!["pcrs2.json: sha256 PCR \"24\" is not a PCR index"],
        ),
    ];
    for (flag, file, words) in cases {
        let run = check(&f.this_image, "qemu-vtpm", &[flag, s(&file)]);
        assert_fails(&run, 2, &words);
    }
    // Not a platform of the bundle.
    let run = check(&f.this_image, "qemu-tdx", &["--pcrs", s(&boot("pcrs.json"))]);
    assert_fails(&run, 2, &["the bundle has no platform \"qemu-tdx\" (it has: qemu-vtpm)"]);
    // A bundle that does not verify: a verification failure, as `nodeimg verify` says.
    let text = fs::read_to_string(&f.this_image).unwrap();
    let tampered = write("bundle.json", text.replacen("1.0.0", "1.0.9", 1).as_bytes());
    fs::copy(f.this_image.with_extension("json.minisig"), d.join("bundle.json.minisig")).unwrap();
    let run = check(&tampered, "qemu-vtpm", &["--pcrs", s(&boot("pcrs.json"))]);
    assert_fails(&run, 1, &["verification failed"]);
    // TPM quotes, signatures, keys and evidence files that cannot be read.
    let q = |name: &str| s(&need(&format!("attest/testdata/quote/{name}"))).to_owned();
    let nonce = fs::read_to_string(need("attest/testdata/quote/nonce.hex")).unwrap().trim().to_owned();
    let msg = fs::read(need("attest/testdata/quote/quote-p256.msg")).unwrap();
    let short = write("short.msg", &msg[..msg.len() - 1]);
    let mut long = msg.clone();
    long.push(0);
    let long = write("long.msg", &long);
    let pcrs = q("pcrs.json");
    type QuoteCase = (Vec<String>, Vec<&'static str>);
    let quote_cases: Vec<QuoteCase> = vec![
        (
            vec![s(&short).into(), q("quote-p256.sig"), q("ak-p256.pem"), nonce.clone()],
            vec!["short.msg: not a TPM quote", "pcrDigest at offset", "needs 32 bytes, 31 remain"],
        ),
        (
            vec![s(&long).into(), q("quote-p256.sig"), q("ak-p256.pem"), nonce.clone()],
            vec!["long.msg: not a TPM quote", "1 bytes after its last field"],
        ),
        (
            vec![q("quote-p256.msg"), q("quote-p256.msg"), q("ak-p256.pem"), nonce.clone()],
            vec!["quote-p256.msg: not a TPM quote's signature", "signature scheme"],
        ),
        (
            vec![q("quote-p256.msg"), q("quote-p256.sig"), q("quote-p256.sig"), nonce.clone()],
            vec!["quote-p256.sig: not an attestation key", "TPM2B_PUBLIC"],
        ),
        (vec![q("quote-p256.msg"), q("quote-p256.sig"), q("ak-p256.pem"), "xyz".into()], vec!["--nonce: not hex"]),
    ];
    for (files, words) in quote_cases {
        let mut args = vec!["--tpm-quote", &files[0], "--tpm-quote-sig", &files[1], "--ak", &files[2]];
        args.extend(["--nonce", &files[3], "--pcrs", &pcrs]);
        let run = check(&f.this_image, "qemu-vtpm", &args);
        assert_fails(&run, 2, &words);
    }
    let run = check(&f.this_image, "qemu-vtpm", &["--tpm-quote", &q("quote-p256.msg")]);
    assert_fails(&run, 2, &["--tpm-quote-sig", "--ak", "--nonce"]);
    let args = ["--tpm-quote", &q("quote-p256.msg"), "--tpm-quote-sig", &q("quote-p256.sig")];
    let run = check(&f.this_image, "qemu-vtpm", &[&args[..], &["--ak", &q("ak-p256.pem"), "--nonce", &nonce]].concat());
    assert_fails(&run, 2, &["a TPM quote needs the PCR values it covers: --pcrs, --tpm or --eventlog"]);
    for (text, words) in [
        ("{}", vec!["bad.json: not an evidence file", "missing field `tpm_quote`"]),
        (r#"{"tpm_quote": {"message": "!", "signature": ""}}"#, vec!["tpm_quote.message: not base64"]),
        (r#"{"tpm_quote": {"message": "", "signature": ""}, "extra": 1}"#, vec!["unknown field `extra`"]),
    ] {
        let file = write("bad.json", text.as_bytes());
        let run = check(&f.this_image, "qemu-vtpm", &["--evidence", s(&file)]);
        assert_fails(&run, 2, &words);
    }

    // Evidence is required.
    let run = check(&f.this_image, "qemu-vtpm", &[]);
    assert_fails(&run, 2, &["required"]);
    // A bundle needs its key and platform.
    let run = nodeimg(d, &["attest", "check", "--bundle", s(&f.this_image), "--pcrs", s(&boot("pcrs.json"))]);
    assert_fails(&run, 2, &["--pubkey", "--platform"]);
    let run = nodeimg(d, &["attest", "check", "--platform", "qemu-vtpm", "--pcrs", s(&boot("pcrs.json"))]);
    assert_fails(&run, 2, &["--bundle"]);
}

/// Without a bundle the evidence is checked on its own: its values are reported, none enforced,
/// and the verdict says it is unauthenticated; a log that contradicts the PCRs still fails.
#[test]
fn without_a_bundle_the_evidence_alone() {
    let f = fixture();
    let (log, pcrs) = (boot("eventlog.bin"), boot("pcrs.json"));
    let run = nodeimg(&f.dir, &["attest", "check", "--eventlog", s(&log), "--pcrs", s(&pcrs), "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v = json_of(&run);
    assert_eq!((v["ok"].as_bool(), v["authenticity"].as_str()), (Some(true), Some("unauthenticated")));
    assert!(v.get("bundle").is_none() && v.get("platform").is_none(), "{v}");
    let all = checks(&run);
    assert_eq!(all.len(), 48, "PCRs 0-23 in two banks");
    assert!(all.iter().all(|c| c.status == "observed-only"), "{all:?}");
    let run = nodeimg(&f.dir, &["attest", "check", "--pcrs", s(&pcrs)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("no bundle: verifying the evidence alone\n"), "{run:?}");
    assert!(run.stdout.contains("UNAUTHENTICATED: every enforced value matches (0 ok, 48 observed only)"), "{run:?}");
    // The log of another boot does not replay to these PCRs: a contradiction, exit 1.
    let mut other: Value = serde_json::from_slice(&fs::read(&pcrs).unwrap()).unwrap();
    other["sha256"]["4"] = json!("00".repeat(32));
    let other_pcrs = f.dir.join("other-pcrs.json");
    fs::write(&other_pcrs, other.to_string()).unwrap();
    let run = nodeimg(&f.dir, &["attest", "check", "--eventlog", s(&log), "--pcrs", s(&other_pcrs)]);
    assert_fails(&run, 1, &["mismatch       event log PCR 4 (sha256)", "FAIL: 1 mismatch"]);
}

/// The sealing pattern of Clevis and systemd-cryptenroll, before any node exists: a secret sealed
/// (tpm2-tools) under the PolicyPCR digest `nodeimg export --format tpm2-policy` computes from
/// the release's predicted PCRs 4, 7 and 9 unseals in a TPM that went through the real boot, and
/// no longer after one more measurement.
#[test]
fn a_secret_sealed_to_the_predicted_pcrs_unseals_after_the_real_boot() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = &f.this_image; // the bundle.json of the release
    let args = [
        "export",
        "--bundle",
        s(bundle),
        "--no-verify",
        "--format",
        "tpm2-policy",
        "--platform",
        "qemu-vtpm",
        "--pcrs",
        "4,7,9",
    ];
    let run = nodeimg(d, &args);
    assert_eq!(run.code, 0, "{run:?}");
    fs::write(d.join("policy.bin"), hex::decode(run.stdout.trim()).unwrap()).unwrap();
    fs::write(d.join("secret.txt"), b"the disk key").unwrap();

    let tpm = Swtpm::start("sha256,sha384");
    let tcti = tpm.tcti();
    // No resource manager in front of the swtpm: transient objects the tools load are flushed
    // after each command (the context files reload them).
    let tpm2 = |tool_name: &str, args: &[&str]| {
        let all: Vec<&str> = ["-T", tcti.as_str()].into_iter().chain(args.iter().copied()).collect();
        let run = tool(d, tool_name, &all);
        let _ = tool(d, "tpm2_flushcontext", &["-T", tcti.as_str(), "-t"]);
        run
    };
    let ok = |r: Run, what: &str| assert_eq!(r.code, 0, "{what}: {r:?}");
    // Sealed before the boot: the TPM's PCRs are still at reset.
    ok(tpm2("tpm2_createprimary", &["-C", "o", "-c", "primary.ctx"]), "createprimary");
    ok(
        tpm2(
            "tpm2_create",
            &[
                "-C",
                "primary.ctx",
                "-L",
                "policy.bin",
                "-a",
                "fixedtpm|fixedparent",
                "-i",
                "secret.txt",
                "-u",
                "seal.pub",
                "-r",
                "seal.priv",
            ],
        ),
        "create",
    );
    let unseal = || {
        let _ = fs::remove_file(d.join("session.ctx"));
        ok(tpm2("tpm2_load", &["-C", "primary.ctx", "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx"]), "load");
        ok(tpm2("tpm2_startauthsession", &["--policy-session", "-S", "session.ctx"]), "startauthsession");
        ok(tpm2("tpm2_policypcr", &["-S", "session.ctx", "-l", "sha256:4,7,9"]), "policypcr");
        let r = tpm2("tpm2_unseal", &["-c", "seal.ctx", "-p", "session:session.ctx"]);
        let _ = tpm2("tpm2_flushcontext", &["-s"]);
        r
    };
    assert_ne!(unseal().code, 0, "unsealed before the boot");
    replay_into(&tpm, &[]);
    let r = unseal();
    assert_eq!((r.code, r.stdout.as_str()), (0, "the disk key"), "after the real boot: {r:?}");
    tpm.extend(&[format!("9:sha256={}", "11".repeat(32))]);
    assert_ne!(unseal().code, 0, "unsealed after one more measurement into PCR 9");
}

/// A swtpm that went through the real boot (its log's events extended) quotes the enforced PCRs
/// with an AK made by tpm2-tools; tpm2_checkquote and nodeimg judge the same quote side by side:
/// genuine and of this release (exit 0, authenticated), of another release (exit 1, naming the
/// .cmdline event), with another nonce (both refuse), leaving enforced PCRs out (tpm2_checkquote
/// accepts the quote, nodeimg refuses it against the bundle), and as one --evidence file.
#[test]
fn a_tpm_quote_of_the_real_boot() {
    use base64::Engine;
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = boot("eventlog.bin");
    let tpm = Swtpm::start("sha256,sha384");
    replay_into(&tpm, &[]);
    let tcti = tpm.tcti();
    let tpm2 = |tool_name: &str, args: &[&str]| {
        let all: Vec<&str> = ["-T", tcti.as_str()].into_iter().chain(args.iter().copied()).collect();
        let run = tool(d, tool_name, &all);
        let _ = tool(d, "tpm2_flushcontext", &["-T", tcti.as_str(), "-t"]);
        let _ = tool(d, "tpm2_flushcontext", &["-T", tcti.as_str(), "-s"]);
        run
    };
    let ok = |r: Run, what: &str| assert_eq!(r.code, 0, "{what}: {r:?}");
    ok(tpm2("tpm2_createek", &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]), "createek");
    ok(
        tpm2(
            "tpm2_createak",
            &["-C", "ek.ctx", "-c", "ak.ctx", "-G", "rsa", "-s", "rsassa", "-g", "sha256", "-u", "ak.pub"],
        ),
        "createak",
    );
    ok(tpm2("tpm2_readpublic", &["-c", "ak.ctx", "-f", "pem", "-o", "ak.pem"]), "readpublic");
    let nonce = hex::encode(common::random_bytes(32));
    let enforced = "4,5,7,9,11,12,13";
    let quote = |sel: &str, tag: &str| {
        let (m, sg, p) = (format!("{tag}.msg"), format!("{tag}.sig"), format!("{tag}.pcrs"));
        ok(
            tpm2(
                "tpm2_quote",
                &["-c", "ak.ctx", "-l", sel, "-q", &nonce, "-g", "sha256", "-m", &m, "-s", &sg, "-o", &p],
            ),
            "quote",
        );
        (d.join(m), d.join(sg), d.join(p))
    };
    let checkquote = |m: &Path, sg: &Path, p: &Path, n: &str| {
        tool(
            d,
            "tpm2_checkquote",
            &["-u", s(&d.join("ak.pub")), "-m", s(m), "-s", s(sg), "-f", s(p), "-q", n, "-g", "sha256"],
        )
    };
    let (msg, sig, pcrs) = quote(&format!("sha256:{enforced}+sha384:{enforced}"), "full");
    let quote_args = |m: &Path, sg: &Path, n: &str| -> Vec<String> {
        ["--tpm-quote", s(m), "--tpm-quote-sig", s(sg), "--ak", s(&d.join("ak.pem")), "--nonce", n]
            .iter()
            .map(|x| x.to_string())
            .collect()
    };
    let run_check = |bundle: Option<&Path>, extra: &[String]| -> Run {
        let mut args: Vec<String> = vec!["attest".into(), "check".into()];
        if let Some(b) = bundle {
            args.extend(
                ["--bundle", s(b), "--pubkey", s(&f.dir.join("k.pub")), "--platform", "qemu-vtpm"].map(String::from),
            );
        }
        args.extend_from_slice(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        nodeimg(d, &refs)
    };

    // Genuine, and this release's.
    ok(checkquote(&msg, &sig, &pcrs, &nonce), "tpm2_checkquote of the quote");
    let mut args = quote_args(&msg, &sig, &nonce);
    args.extend(["--eventlog".into(), s(&log).into(), "--json".into()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_eq!(run.code, 0, "{run:?}");
    let v = json_of(&run);
    assert_eq!(v["authenticity"], "authenticated", "{v}");
    let all = checks(&run);
    let first: Vec<&str> = all.iter().take(5).map(|c| c.value.as_str()).collect();
    assert_eq!(
        first,
        ["TPM QUOTE SIGNATURE", "TPM QUOTE TYPE", "TPM QUOTE NONCE", "TPM QUOTE PCR SELECTION", "TPM QUOTE PCR DIGEST"]
    );
    assert!(all.iter().take(5).all(|c| c.status == "ok"), "{all:?}");
    for bank in ["sha256", "sha384"] {
        for pcr in enforced.split(',') {
            assert_eq!(status_of(&all, &format!("PCR {pcr} ({bank})")).status, "ok", "{bank} {pcr}");
        }
    }
    // Only the quoted PCRs are reported: the others are not vouched for.
    assert!(!all.iter().any(|c| c.value == "PCR 0 (sha256)"), "{all:?}");
    assert_eq!(v["tpm_quote"]["extra_data"], nonce);
    // The PCR values from the TPM instead of the log, and the text verdict.
    let mut args = quote_args(&msg, &sig, &nonce);
    args.extend(["--tpm".into(), tcti.clone()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("\nOK: the evidence is authentic (given its keys)"), "{run:?}");

    // Genuine, but another release.
    let mut args = quote_args(&msg, &sig, &nonce);
    args.extend(["--eventlog".into(), s(&log).into()]);
    let run = run_check(Some(&f.other_cmdline), &args);
    assert_fails(
        &run,
        1,
        &["ok             TPM QUOTE SIGNATURE", "The UKI's .cmdline section differs", "FAIL: 6 mismatch(es)"],
    );

    // Another nonce: a replayed quote. Both refuse it.
    let other = hex::encode(common::random_bytes(32));
    assert_ne!(checkquote(&msg, &sig, &pcrs, &other).code, 0, "tpm2_checkquote accepted another nonce");
    let mut args = quote_args(&msg, &sig, &other);
    args.extend(["--eventlog".into(), s(&log).into()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_fails(&run, 1, &["mismatch       TPM QUOTE NONCE", "FAIL: 1 mismatch(es): TPM QUOTE NONCE"]);

    // A tampered signature: both refuse it.
    let bad_sig = d.join("bad.sig");
    let mut bytes = fs::read(&sig).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&bad_sig, bytes).unwrap();
    assert_ne!(checkquote(&msg, &bad_sig, &pcrs, &nonce).code, 0, "tpm2_checkquote accepted a tampered signature");
    let mut args = quote_args(&msg, &bad_sig, &nonce);
    args.extend(["--eventlog".into(), s(&log).into()]);
    assert_fails(&run_check(Some(&f.this_image), &args), 1, &["mismatch       TPM QUOTE SIGNATURE"]);

    // A log that is not the quoted boot's (one PCR 4 digest changed): the PCR values replayed from
    // it do not make the quote's digest. tpm2_checkquote -e refuses it too.
    let parsed = eventlog::parse(&fs::read(&log).unwrap()).unwrap();
    let i = parsed.events.iter().position(|e| e.pcr == 4 && e.is_extended()).expect("a PCR 4 event");
    let mut bytes = fs::read(&log).unwrap();
    // TCG_PCR_EVENT2: index, type, digest count (u32 each), then the first algorithm id (u16).
    bytes[parsed.offsets[i] as usize + 14] ^= 1;
    let other_log = d.join("other-log.bin");
    fs::write(&other_log, bytes).unwrap();
    let theirs = tool(
        d,
        "tpm2_checkquote",
        &[
            "-u",
            "ak.pub",
            "-m",
            s(&msg),
            "-s",
            s(&sig),
            "-f",
            s(&pcrs),
            "-q",
            &nonce,
            "-g",
            "sha256",
            "-e",
            s(&other_log),
        ],
    );
    assert_ne!(theirs.code, 0, "tpm2_checkquote accepted another log: {theirs:?}");
    let mut args = quote_args(&msg, &sig, &nonce);
    args.extend(["--eventlog".into(), s(&other_log).into()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_fails(&run, 1, &["mismatch       TPM QUOTE PCR DIGEST", "not the ones the TPM quoted"]);

    // A genuine quote that leaves PCRs 9 and 11 out: tpm2_checkquote accepts it, the bundle does not.
    let (pmsg, psig, ppcrs) = quote("sha256:4,5,7,12,13", "partial");
    ok(checkquote(&pmsg, &psig, &ppcrs, &nonce), "tpm2_checkquote of the partial quote");
    let mut args = quote_args(&pmsg, &psig, &nonce);
    args.extend(["--eventlog".into(), s(&log).into()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_fails(&run, 1, &["mismatch       TPM QUOTE PCR SELECTION", "sha256 PCR 9, 11"]);
    // Without a bundle the same quote verifies on its own, as tpm2_checkquote says.
    let run = run_check(None, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("observed-only  TPM QUOTE PCR SELECTION sha256:4,5,7,12,13"), "{run:?}");

    // One evidence file with the quote, the key and the log; the verifier's nonce on the command line.
    let b64 = |p: &Path| base64::engine::general_purpose::STANDARD.encode(fs::read(p).unwrap());
    let evidence = json!({
        "tpm_quote": {"message": b64(&msg), "signature": b64(&sig),
                      "ak": fs::read_to_string(d.join("ak.pem")).unwrap()},
        "eventlog": b64(&log),
    });
    let file = d.join("evidence.json");
    fs::write(&file, serde_json::to_vec(&evidence).unwrap()).unwrap();
    // The key came with the evidence: its signature proves only that the key's holder signed,
    // so every value matching still says UNAUTHENTICATED (exit 0), never OK.
    let run = run_check(Some(&f.this_image), &["--evidence".into(), s(&file).into(), "--nonce".into(), nonce.clone()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("note: the attestation key came with the evidence (no --ak)"), "{run:?}");
    assert!(run.stdout.contains("UNAUTHENTICATED: every enforced value matches"), "{run:?}");
    // With the verifier's own key for the node's TPM (--ak), the same evidence is authentic.
    let mut args: Vec<String> = vec!["--evidence".into(), s(&file).into(), "--nonce".into(), nonce.clone()];
    args.extend(["--ak".into(), s(&d.join("ak.pem")).into()]);
    let run = run_check(Some(&f.this_image), &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("OK: the evidence is authentic"), "{run:?}");
    let run = run_check(Some(&f.other_cmdline), &["--evidence".into(), s(&file).into(), "--nonce".into(), nonce]);
    assert_fails(&run, 1, &["The UKI's .cmdline section differs"]);
}
