//! `nodeimg export --format keylime` judged by Keylime's own code.
//!
//! Keylime 7.14.3 (PyPI, installed into .venv by `make setup`) is driven offline by
//! `tests/keylime/keylime_check.py`, which calls the functions its verifier and tenant call:
//! `mba.bootlog_parse` + `mba.bootlog_evaluate` (measured boot), `Tpm().check_quote` (a quote
//! with its PCRs, the tpm_policy and the measured-boot evidence), `cli.policies.process_policy`
//! (the tenant's handling of `--tpm_policy` and `--mb-policy[-name]`), with the exported
//! `nodeimg_uki.py` installed as verifier.conf's `measured_boot_imports`.
//!
//! * Every real boot of `measure/testdata/boot/` (QEMU + OVMF + swtpm) against the refstate
//!   exported from a release predicted from its inputs: accepted; against another boot's
//!   refstate, rejected. Keylime's shipped `example` policy, given the refstate Keylime's own
//!   `keylime-policy create measured-boot` makes from the same log, rejects it.
//! * The sb-off log with another `.cmdline` (its PCR 9 and 11 digests those of the other command
//!   line, computed here with sha2): rejected, naming the event.
//! * A swtpm into which the real log is replayed (tpm2_pcrextend), then systemd-pcrphase's four
//!   phase words into PCR 11, quoted by tpm2_quote with an AK from tpm2_createak: accepted (in
//!   the sha256 and the sha384 bank); rejected with another nonce, with two PCR values swapped in the quote's PCR file, at another
//!   boot phase than the tpm_policy's, and with the tampered log replayed (PCRs consistent with
//!   the log: only the refstate can say no).
//!
//! Needs `make setup` (keylime in .venv, the boot inputs under tools/, swtpm, tpm2-tools); fails
//! loudly without.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::release::{build_output, keyed_dir, need, release, root, s, vtpm_reference, BootInputs, BOOTS};
use common::swtpm::{extend_spec, Swtpm};
use common::{assert_fails, nodeimg, tool, Run};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};

/// The booted UKI's command line, and the other image's.
const CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=4";
const OTHER_CMDLINE: &str = "console=ttyS0 panic=-1 loglevel=7";
/// systemd-pcrphase's words, in boot order (systemd `docs/TPM2_PCR_MEASUREMENTS.md`).
const PHASES: [&str; 4] = ["enter-initrd", "leave-initrd", "sysinit", "ready"];

/// The venv's Python with keylime importable, or a failure saying to run `make setup`.
fn python() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let py = need(".venv/bin/python3");
        let run = tool(root(), s(&py), &["-c", "import keylime.tpm.tpm_main, keylime.mba.mba; print('ok')"]);
        assert_eq!(run.code, 0, "keylime is not importable from .venv: run `make setup`\n{run:?}");
        py
    })
    .clone()
}

/// `keylime_check.py --policy-dir DIR ARGS…`: its JSON verdict, the run for messages.
fn keylime(policy_dir: &Path, args: &[&str]) -> (bool, Value, Run) {
    let script = need("tests/keylime/keylime_check.py");
    let mut all = vec![s(&script), "--policy-dir", s(policy_dir)];
    all.extend_from_slice(args);
    let run = tool(root(), s(&python()), &all);
    assert!(run.code == 0 || run.code == 1, "keylime_check.py failed to run: {run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"));
    (v["accepted"].as_bool().unwrap(), v, run)
}

/// The reasons of a rejection, joined.
fn reasons(v: &Value) -> String {
    v["failures"].as_array().unwrap().iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
}

/// Releases and exports shared by the tests.
struct Fixture {
    dir: PathBuf,
    /// Per capture: its release's bundle and the export directory.
    boots: Vec<(BootInputs, PathBuf, PathBuf)>,
    /// The release of the sb-off UKI with [`OTHER_CMDLINE`].
    other_cmdline: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let d = keyed_dir("keylime_cli");
        let mut boots = Vec::new();
        for (i, boot) in BOOTS.iter().enumerate() {
            let uki = boot.uki();
            let values = vtpm_reference(&d, boot, &uki, boot.mode);
            let build = format!("build-{}", boot.mode);
            build_output(
                &d.join(&build),
                &format!("1.0.{i}"),
                &[("qemu-vtpm", values, vec![("uki.efi", fs::read(&uki).unwrap())])],
            );
            let bundle = release(&d, &build, &format!("1.0.{i}"), &[]);
            let out = d.join(format!("export-{}", boot.mode));
            export(&d, &[&bundle], &out, &[]);
            boots.push((*boot, bundle, out));
        }
        let sb_off = &BOOTS[0];
        assert!(fs::read_to_string(sb_off.capture("inputs.txt"))
            .unwrap()
            .contains(&format!("ukify-cmdline {CMDLINE}\n")));
        let other = d.join("other.efi");
        let run = nodeimg(&d, &["uki", "set-cmdline", s(&sb_off.uki()), "--cmdline", OTHER_CMDLINE, "-o", s(&other)]);
        assert_eq!(run.code, 0, "{run:?}");
        let values = vtpm_reference(&d, sb_off, &other, "other");
        build_output(
            &d.join("build-other"),
            "2.0.0",
            &[("qemu-vtpm", values, vec![("uki.efi", fs::read(&other).unwrap())])],
        );
        let other_cmdline = release(&d, "build-other", "2.0.0", &[]);
        Fixture { dir: d, boots, other_cmdline }
    })
}

/// `nodeimg export --format keylime --bundle B… --pubkey k.pub -o OUT ARGS…`, which must succeed.
fn export(d: &Path, bundles: &[&Path], out: &Path, extra: &[&str]) {
    let mut args = vec!["export", "--format", "keylime", "--pubkey", "k.pub", "-o", s(out)];
    for b in bundles {
        args.extend_from_slice(&["--bundle", s(b)]);
    }
    args.extend_from_slice(extra);
    let run = nodeimg(d, &args);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("tpm_policy.json (PCRs 4, 5, 7, 9, 11, 12, 13)"), "{run:?}");
}

fn export_of(mode: &str) -> &'static Path {
    &fixture().boots.iter().find(|(b, _, _)| b.mode == mode).unwrap().2
}

/// Keylime's measured-boot evaluation of `log` against the refstate in `export_dir`.
fn evaluate(log: &Path, export_dir: &Path) -> (bool, Value, Run) {
    keylime(export_dir, &["mb", s(log), s(&export_dir.join("refstate.json"))])
}

#[test]
fn every_real_boot_is_accepted_by_keylimes_measured_boot_evaluation() {
    let f = fixture();
    for (boot, _, out) in &f.boots {
        let (ok, v, run) = evaluate(&boot.capture("eventlog.bin"), out);
        assert!(ok, "{}: rejected: {}\n{run:?}", boot.mode, reasons(&v));
        assert_eq!(v["stage"], "bootlog_evaluate", "{run:?}");
    }
    // Another boot's refstate says no, and why. (The sb-off log is accepted by the all-banks
    // refstate: the same boot, whose refstate also has sha1 values.)
    let cases = [
        ("sb-on", "sb-off", "PCR 4 events is shorter (3) than the applicable tests (4)"),
        ("sb-off", "sb-on", "PCR 4 events is longer (4) than the applicable tests (3)"),
        ("extras", "sb-off", "PCR 9 events[1] EV_EVENT_TAG tag 0x8f3b22ec (Linux initrd)"),
        ("sb-setup", "sb-off", "PCR 7 events[0] EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot"),
        ("all-banks", "sb-off", "has a sha1 digest, a bank the refstate has no values for"),
    ];
    for (log_of, refstate_of, why) in cases {
        let log = f.boots.iter().find(|(b, _, _)| b.mode == log_of).unwrap().0.capture("eventlog.bin");
        let (ok, v, run) = evaluate(&log, export_of(refstate_of));
        assert!(!ok, "the {log_of} log passed the {refstate_of} refstate: {run:?}");
        assert!(reasons(&v).contains(why), "{log_of} vs {refstate_of}: want {why:?} in\n{}", reasons(&v));
        assert!(reasons(&v).contains("measured_boot.policy_nodeimg-uki"), "{}", reasons(&v));
    }
    let (ok, _, run) = evaluate(&BOOTS[0].capture("eventlog.bin"), export_of("all-banks"));
    assert!(ok, "{run:?}");
}

/// A refstate the module cannot read is a rejection with the reason, never a pass.
#[test]
fn a_refstate_of_another_format_is_a_rejection() {
    let f = fixture();
    let log = BOOTS[0].capture("eventlog.bin");
    let cases = [
        (r#"{"nodeimg_uki": 2, "boots": []}"#, "this is not a nodeimg-uki refstate"),
        (r#"{"has_secureboot": false, "kernels": []}"#, "this is not a nodeimg-uki refstate"),
        (r#"{"nodeimg_uki": 1, "boots": []}"#, "boots must be a non-empty list"),
        (r#"{"nodeimg_uki": 1, "boots": [{"pcrs": {"10": []}}]}"#, "PCR '10' is not one this policy checks"),
        (
            r#"{"nodeimg_uki": 1, "boots": [{"pcrs": {"4": [{"type": "EV_SEPARATOR", "digests": {"sha256": "0x00"}}]}}]}"#,
            "sha256 digest '0x00' is not 0x and 32 lowercase hex bytes",
        ),
    ];
    let dir = f.dir.join("bad-refstates");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(export_of("sb-off").join("nodeimg_uki.py"), dir.join("nodeimg_uki.py")).unwrap();
    for (i, (refstate, why)) in cases.iter().enumerate() {
        let path = dir.join(format!("refstate-{i}.json"));
        fs::write(&path, refstate).unwrap();
        let (ok, v, run) = keylime(&dir, &["mb", s(&log), s(&path)]);
        assert!(!ok, "{refstate}: accepted: {run:?}");
        assert!(
            reasons(&v).contains("policy evaluation failed") && reasons(&v).contains(why),
            "{refstate}: {}",
            reasons(&v)
        );
    }
}

/// Why the export ships a policy module: Keylime's own tool makes a refstate from the very log
/// (`keylime-policy create measured-boot`), and Keylime's shipped policy `example` (shim → grub →
/// kernel) still rejects the UKI boot.
#[test]
fn keylimes_example_policy_rejects_the_same_uki_boots() {
    let out = export_of("sb-off");
    for (mode, why) in [("sb-off", "lacks fields"), ("sb-on", "refstate['kernels'] is None instead of a list")] {
        let log = BOOTS.iter().find(|b| b.mode == mode).unwrap().capture("eventlog.bin");
        let (ok, v, run) = keylime(out, &["example", s(&log)]);
        assert!(!ok, "{mode}: accepted by example: {run:?}");
        assert!(
            reasons(&v).contains("measured_boot.policy_example") && reasons(&v).contains(why),
            "{mode}: {}",
            reasons(&v)
        );
    }
}

/// The sb-off log as if the UKI had booted with `cmdline`: the digests of PCR 9's LoadOptions
/// event (the command line in UTF-16LE with its NUL) and, with `pcr11`, of PCR 11's `.cmdline`
/// contents (the section's bytes) replaced by those of `cmdline`, in both banks.
fn log_with_cmdline(cmdline: &str, pcr9: bool, pcr11: bool) -> Vec<u8> {
    let mut log = fs::read(BOOTS[0].capture("eventlog.bin")).unwrap();
    let utf16 = |t: &str| format!("{t}\0").encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let mut swaps: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut add = |old: &[u8], new: &[u8]| {
        swaps.push((Sha256::digest(old).to_vec(), Sha256::digest(new).to_vec()));
        swaps.push((Sha384::digest(old).to_vec(), Sha384::digest(new).to_vec()));
    };
    if pcr9 {
        add(&utf16(CMDLINE), &utf16(cmdline));
    }
    if pcr11 {
        add(CMDLINE.as_bytes(), cmdline.as_bytes());
    }
    for (old, new) in swaps {
        let at: Vec<usize> =
            log.windows(old.len()).enumerate().filter(|(_, w)| *w == old.as_slice()).map(|(i, _)| i).collect();
        assert_eq!(at.len(), 1, "the digest {} is in the log once", hex::encode(&old));
        log[at[0]..at[0] + new.len()].copy_from_slice(&new);
    }
    log
}

#[test]
fn a_log_with_another_cmdline_is_rejected() {
    let f = fixture();
    let out = export_of("sb-off");
    for (pcr9, pcr11, why) in [
        (true, true, "PCR 9 events[0] EV_EVENT_TAG tag 0x8f3b22ed (Linux LoadOptions)"),
        (false, true, "PCR 11 events[5] EV_IPL .cmdline (contents): has sha256 digest"),
    ] {
        let log = f.dir.join(format!("cmdline-{pcr9}-{pcr11}.bin"));
        fs::write(&log, log_with_cmdline(OTHER_CMDLINE, pcr9, pcr11)).unwrap();
        let (ok, v, run) = evaluate(&log, out);
        assert!(!ok, "accepted: {run:?}");
        assert!(reasons(&v).contains(why), "want {why:?} in\n{}", reasons(&v));
    }
}

#[test]
fn two_releases_in_one_refstate_and_one_tpm_policy() {
    let f = fixture();
    let d = &f.dir;
    let sb_off = &f.boots[0].1;
    let both = d.join("export-both");
    export(d, &[sb_off, &f.other_cmdline], &both, &[]);
    let other = d.join("export-other");
    export(d, &[&f.other_cmdline], &other, &[]);
    let log = BOOTS[0].capture("eventlog.bin");
    let (ok, _, run) = evaluate(&log, &both);
    assert!(ok, "{run:?}");
    let (ok, v, _) = evaluate(&log, &other);
    assert!(!ok && reasons(&v).contains("boot-capture 2.0.0 qemu-vtpm: PCR 4 events[2]"), "{}", reasons(&v));
    // The tpm_policy accepts either release's PCR 4, 9 and 11 (two banks each).
    let policy: Value = serde_json::from_slice(&fs::read(both.join("tpm_policy.json")).unwrap()).unwrap();
    for (pcr, n) in [("4", 4), ("9", 4), ("11", 4), ("7", 2)] {
        assert_eq!(policy[pcr].as_array().unwrap().len(), n, "PCR {pcr}: {policy}");
    }
    // The same inputs export the same bytes, whatever their order.
    let again = d.join("export-both-again");
    export(d, &[&f.other_cmdline, sb_off], &again, &[]);
    for file in ["tpm_policy.json", "refstate.json", "nodeimg_uki.py"] {
        assert_eq!(fs::read(both.join(file)).unwrap(), fs::read(again.join(file)).unwrap(), "{file}");
    }
    assert_eq!(
        fs::read(both.join("nodeimg_uki.py")).unwrap(),
        fs::read(need("release/keylime/nodeimg_uki.py")).unwrap()
    );
}

#[test]
fn the_tenant_takes_the_tpm_policy_with_a_named_measured_boot_policy() {
    let out = export_of("sb-off");
    let tpm_policy = out.join("tpm_policy.json");
    // Alone, and with a refstate stored by name (`-c addmbpolicy`, then `--mb-policy-name`).
    let (ok, v, run) = keylime(out, &["tenant", "--tpm-policy", s(&tpm_policy)]);
    assert!(ok, "{run:?}");
    assert_eq!(v["tpm_policy"]["mask"], "0x3ab0", "PCRs 4, 5, 7, 9, 11, 12, 13: {run:?}");
    let (ok, v, run) = keylime(out, &["tenant", "--tpm-policy", s(&tpm_policy), "--mb-policy-name", "nodeimg-1.0.0"]);
    assert!(ok, "{run:?}");
    assert_eq!(v["tpm_policy"]["mask"], "0xfbff", "and every measured-boot PCR: {run:?}");
    assert_eq!(v["tpm_policy"]["11"].as_array().unwrap().len(), 2, "{run:?}");
    // With the refstate file itself (`--mb-policy FILE`) the tenant refuses a tpm_policy holding
    // measured-boot PCRs: docs/verifying-keylime.md says to store the refstate by name.
    let refstate = out.join("refstate.json");
    let (ok, v, run) = keylime(out, &["tenant", "--tpm-policy", s(&tpm_policy), "--mb-policy", s(&refstate)]);
    assert!(!ok, "{run:?}");
    assert_eq!(v["exit"], 1, "{run:?}");
    assert!(
        run.stderr.contains("is specified in \"tpm_policy\", but will in fact be used by measured boot"),
        "{run:?}"
    );
    let empty = fixture().dir.join("empty-tpm-policy.json");
    fs::write(&empty, "{}").unwrap();
    let (ok, v, run) = keylime(out, &["tenant", "--tpm-policy", s(&empty), "--mb-policy", s(&refstate)]);
    assert!(ok && v["mb_policy_loaded"] == true, "{run:?}");
}

/// A swtpm that went through a boot: the events of `log`, then systemd-pcrphase's `phases`.
fn booted_tpm(log: &[u8], phases: &[&str]) -> Swtpm {
    let tpm = Swtpm::start("sha256,sha384");
    let log = eventlog::parse(log).unwrap();
    let mut specs: Vec<String> = log.events.iter().filter(|e| e.is_extended()).map(extend_spec).collect();
    for p in phases {
        specs.push(format!(
            "11:sha256={},sha384={}",
            hex::encode(Sha256::digest(p.as_bytes())),
            hex::encode(Sha384::digest(p.as_bytes()))
        ));
    }
    tpm.extend(&specs);
    tpm
}

/// tpm2-tools in `dir` against `tpm`; transient objects flushed after each command (no resource
/// manager in front of a swtpm).
fn tpm2(tpm: &Swtpm, dir: &Path, program: &str, args: &[&str]) {
    let tcti = tpm.tcti();
    let all: Vec<&str> = ["-T", tcti.as_str()].into_iter().chain(args.iter().copied()).collect();
    let run = tool(dir, program, &all);
    let _ = tool(dir, "tpm2_flushcontext", &["-T", tcti.as_str(), "-t"]);
    assert_eq!(run.code, 0, "{program} {args:?}: {run:?}");
}

/// The PCR selection the agent quotes for a tpm_policy mask (`0xfbff` → `0,1,…`).
fn pcr_list(mask: &str) -> String {
    let m = u32::from_str_radix(mask.trim_start_matches("0x"), 16).unwrap();
    (0..24).filter(|i| m & (1 << i) != 0).map(|i: u32| i.to_string()).collect::<Vec<_>>().join(",")
}

/// A quote of `tpm` by a fresh AK over the PCRs a named measured-boot policy makes the agent
/// quote, with `nonce`: the directory holding ak.pub, quote.msg, quote.sig and quote.pcrs.
fn quote(tpm: &Swtpm, tag: &str, nonce: &str, bank: &str) -> PathBuf {
    let q = fixture().dir.join(format!("quote-{tag}"));
    let _ = fs::remove_dir_all(&q);
    fs::create_dir_all(&q).unwrap();
    let out = export_of("sb-off");
    let (_, v, _) =
        keylime(out, &["tenant", "--tpm-policy", s(&out.join("tpm_policy.json")), "--mb-policy-name", "nodeimg"]);
    let pcrs = pcr_list(v["tpm_policy"]["mask"].as_str().unwrap());
    tpm2(tpm, &q, "tpm2_createek", &["-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
    tpm2(
        tpm,
        &q,
        "tpm2_createak",
        &["-C", "ek.ctx", "-c", "ak.ctx", "-G", "rsa", "-g", bank, "-s", "rsassa", "-u", "ak.pub", "-n", "ak.name"],
    );
    let qualifying = hex::encode(nonce.as_bytes());
    let selection = format!("{bank}:{pcrs}");
    fs::write(q.join("bank"), bank).unwrap();
    tpm2(
        tpm,
        &q,
        "tpm2_quote",
        &[
            "-c",
            "ak.ctx",
            "-l",
            &selection,
            "-q",
            &qualifying,
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-o",
            "quote.pcrs",
            "-g",
            bank,
        ],
    );
    q
}

/// Keylime's `Tpm().check_quote` on the quote in `q`, with the export's tpm_policy (or
/// `tpm_policy`), its refstate and `log`.
fn check_quote(q: &Path, nonce: &str, export_dir: &Path, tpm_policy: Option<&Path>, log: &Path) -> (bool, Value, Run) {
    let policy = tpm_policy.map_or_else(|| export_dir.join("tpm_policy.json"), Path::to_path_buf);
    let f = |n: &str| q.join(n).to_str().unwrap().to_owned();
    let bank = fs::read_to_string(q.join("bank")).unwrap();
    keylime(
        export_dir,
        &[
            "quote",
            "--ak",
            &f("ak.pub"),
            "--message",
            &f("quote.msg"),
            "--signature",
            &f("quote.sig"),
            "--pcrs",
            &f("quote.pcrs"),
            "--nonce",
            nonce,
            "--tpm-policy",
            s(&policy),
            "--refstate",
            s(&export_dir.join("refstate.json")),
            "--log",
            s(log),
            "--hash",
            &bank,
        ],
    )
}

#[test]
fn real_quotes_through_keylimes_check_quote() {
    let f = fixture();
    let out = export_of("sb-off");
    let real_log = BOOTS[0].capture("eventlog.bin");
    let nonce = "Kq0nodeimgKeylimeNonce1";

    // The real boot, fully booted (PCR 11 at `ready`): accepted. PCR 11 is not replayed against
    // the log (systemd-pcrphase extended it after the log ended) but checked by the tpm_policy.
    let tpm = booted_tpm(&fs::read(&real_log).unwrap(), &PHASES);
    let q = quote(&tpm, "ready", nonce, "sha256");
    let (ok, v, run) = check_quote(&q, nonce, out, None, &real_log);
    assert!(ok, "rejected: {}\n{run:?}", reasons(&v));
    assert!(
        run.stderr.contains("Compared PCRs 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14 against measured boot log"),
        "{run:?}"
    );
    assert!(run.stderr.contains("PCR #11 contains value allowed by TPM policy"), "{run:?}");

    // The same boot quoted in the sha384 bank: the tpm_policy holds both banks' values, and the
    // refstate checks every bank of the log.
    let q384 = quote(&tpm, "ready-sha384", nonce, "sha384");
    let (ok, v, run) = check_quote(&q384, nonce, out, None, &real_log);
    assert!(ok, "rejected: {}\n{run:?}", reasons(&v));
    assert!(run.stderr.contains("from bank 'sha384' found in TPM quote"), "{run:?}");

    // Another nonce: the quote does not answer this challenge.
    let (ok, v, _) = check_quote(&q, "AnotherNonce", out, None, &real_log);
    assert!(!ok && reasons(&v).contains("The nonce from the attestation differs"), "{}", reasons(&v));

    // PCR 4 and PCR 9 swapped in the quote's PCR file: the signed digest no longer covers them.
    let swapped = f.dir.join("quote-swapped");
    let _ = fs::remove_dir_all(&swapped);
    fs::create_dir_all(&swapped).unwrap();
    for n in ["ak.pub", "quote.msg", "quote.sig", "bank"] {
        fs::copy(q.join(n), swapped.join(n)).unwrap();
    }
    let mut pcrs = fs::read(q.join("quote.pcrs")).unwrap();
    let value = |pcr: &str| hex::decode(tpm_pcr(&tpm, pcr)).unwrap();
    let (p4, p9) = (value("4"), value("9"));
    let at = |v: &[u8], pcrs: &[u8]| pcrs.windows(32).position(|w| w == v).unwrap();
    let (i4, i9) = (at(&p4, &pcrs), at(&p9, &pcrs));
    pcrs[i4..i4 + 32].copy_from_slice(&p9);
    pcrs[i9..i9 + 32].copy_from_slice(&p4);
    fs::write(swapped.join("quote.pcrs"), pcrs).unwrap();
    let (ok, v, _) = check_quote(&swapped, nonce, out, None, &real_log);
    assert!(!ok && reasons(&v).contains("The digest used for quoting is different"), "{}", reasons(&v));

    // A quote taken in the initrd (PCR 11 at `enter-initrd`): the `ready` tpm_policy says no;
    // exported for that phase, yes.
    let initrd = booted_tpm(&fs::read(&real_log).unwrap(), &PHASES[..1]);
    let qi = quote(&initrd, "enter-initrd", nonce, "sha256");
    let (ok, v, _) = check_quote(&qi, nonce, out, None, &real_log);
    assert!(!ok && reasons(&v).contains("invalid_pcr_11"), "{}", reasons(&v));
    let at_initrd = f.dir.join("export-enter-initrd");
    export(&f.dir, &[&f.boots[0].1], &at_initrd, &["--pcr11-phase", "enter-initrd"]);
    let (ok, v, run) = check_quote(&qi, nonce, &at_initrd, None, &real_log);
    assert!(ok, "rejected: {}\n{run:?}", reasons(&v));

    // A node booted with another command line, its log consistent with its TPM: the log replays
    // to the quote, so only the refstate can reject it (with an empty tpm_policy), and does.
    let tampered = f.dir.join("tampered.bin");
    fs::write(&tampered, log_with_cmdline(OTHER_CMDLINE, true, true)).unwrap();
    let tpm = booted_tpm(&fs::read(&tampered).unwrap(), &PHASES);
    let qt = quote(&tpm, "tampered", nonce, "sha256");
    let empty = f.dir.join("empty-tpm-policy.json");
    fs::write(&empty, "{}").unwrap();
    let (ok, v, _) = check_quote(&qt, nonce, out, Some(&empty), &tampered);
    let all = reasons(&v);
    assert!(!ok && all.contains("measured_boot.policy_nodeimg-uki") && all.contains("Linux LoadOptions"), "{all}");
    assert!(!all.contains("boot event log PCR value does not match"), "the log replays to the quote: {all}");
    // The real boot passes the same empty tpm_policy: the refstate alone accepts it.
    let (ok, v, _) = check_quote(&q, nonce, out, Some(&empty), &real_log);
    assert!(ok, "{}", reasons(&v));
    // And the real log against the tampered boot's quote: the replay disagrees.
    let (ok, v, _) = check_quote(&qt, nonce, out, Some(&empty), &real_log);
    assert!(!ok && reasons(&v).contains("boot event log PCR value does not match"), "{}", reasons(&v));
}

/// `tpm2_pcrread sha256:PCR` of `tpm`, lowercase hex.
fn tpm_pcr(tpm: &Swtpm, pcr: &str) -> String {
    let tcti = tpm.tcti();
    let run = tool(Path::new("."), "tpm2_pcrread", &["-T", &tcti, &format!("sha256:{pcr}")]);
    assert_eq!(run.code, 0, "{run:?}");
    run.stdout.rsplit("0x").next().unwrap().trim().to_lowercase()
}

#[test]
fn unusable_input_and_failed_verification() {
    let f = fixture();
    let d = &f.dir;
    let bundle = &f.boots[0].1;
    // No output directory: a usage error, before anything is read.
    let run = nodeimg(d, &["export", "--format", "keylime", "--bundle", s(bundle), "--pubkey", "k.pub"]);
    assert_fails(&run, 2, &["keylime writes three files: give the directory with -o DIR"]);
    fs::write(d.join("a-file"), b"x").unwrap();
    let run =
        nodeimg(d, &["export", "--format", "keylime", "--bundle", s(bundle), "--pubkey", "k.pub", "-o", "a-file"]);
    assert_fails(&run, 2, &["-o a-file: not a directory"]);
    // A bundle that does not verify: exit 1, nothing written.
    let text = fs::read_to_string(bundle).unwrap();
    fs::write(d.join("bundle.json"), text.replacen("1.0.0", "1.0.9", 1)).unwrap();
    fs::copy(bundle.with_extension("json.minisig"), d.join("bundle.json.minisig")).unwrap();
    let run =
        nodeimg(d, &["export", "--format", "keylime", "--bundle", "bundle.json", "--pubkey", "k.pub", "-o", "never"]);
    assert_fails(&run, 1, &["verification failed", "nothing exported"]);
    assert!(!d.join("never").exists());
    // A phase the bundle does not have.
    let run = nodeimg(
        d,
        &[
            "export",
            "--format",
            "keylime",
            "--bundle",
            s(bundle),
            "--pubkey",
            "k.pub",
            "-o",
            "x",
            "--pcr11-phase",
            "sysinit",
        ],
    );
    assert_fails(&run, 2, &["no PCR 11 value for phase \"sysinit\""]);
    assert!(!d.join("x").exists(), "nothing written");
    // A directory where the refstate goes: none of the three files appears, no temporary is left.
    let blocked = d.join("blocked");
    fs::create_dir_all(blocked.join("refstate.json")).unwrap();
    let run =
        nodeimg(d, &["export", "--format", "keylime", "--bundle", s(bundle), "--pubkey", "k.pub", "-o", "blocked"]);
    assert_fails(&run, 2, &["refstate.json: a directory is in the way of a file"]);
    let mut left: Vec<String> =
        fs::read_dir(&blocked).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["refstate.json"], "all the files or none");
}
