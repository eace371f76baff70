//! `nodeimg pcrs read` against a real (software) TPM, and the event-log writer against the same
//! TPM: a swtpm started here with sha1, sha256 and sha384 banks; known events extended by
//! `tpm2_pcrextend` (tpm2-tools); the banks read back by `nodeimg pcrs read` and by
//! `tpm2_pcrread` (the oracle) must agree; the same events written as a log by
//! `::eventlog::write` must replay — by `nodeimg eventlog replay` and by `tpm2_eventlog`
//! — to what the TPM holds. Needs `make setup` (swtpm, tpm2-tools).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::eventlog::{self, Event, EventLog, EventType, HashAlg};
use common::swtpm::{extend_spec, Swtpm};
use common::{assert_fails, nodeimg, tool};

type Banks = BTreeMap<String, BTreeMap<String, String>>;

/// tpm2_pcrread's YAML: `  sha256:` then `    16: 0xHEX`.
fn pcrread(text: &str) -> Banks {
    let mut banks = Banks::new();
    let mut bank = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(b) = t.strip_suffix(':') {
            bank = b.to_owned();
        } else if let Some((pcr, v)) = t.split_once(':') {
            let v = v.trim().trim_start_matches("0x").to_lowercase();
            banks.entry(bank.clone()).or_default().insert(pcr.trim().to_owned(), v);
        }
    }
    banks
}

/// `nodeimg pcrs read --json`'s banks and `tpm2_pcrread`'s (of `selection`) for the TPM at `tcti`.
fn read_both(dir: &Path, tcti: &str, selection: &str) -> (Banks, Banks) {
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", tcti, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let oracle = tool(dir, "tpm2_pcrread", &["-T", tcti, selection]);
    assert_eq!(oracle.code, 0, "tpm2_pcrread: {oracle:?}");
    (serde_json::from_value(v["banks"].clone()).unwrap(), pcrread(&oracle.stdout))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn read_matches_tpm2_pcrread_and_replay_of_the_written_log() {
    let algs = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384];
    let events = vec![
        Event::hashing_data(4, EventType::EV_EFI_ACTION, b"Calling EFI Application from Boot Option".to_vec(), &algs),
        Event::hashing_data(7, EventType::EV_SEPARATOR, vec![0; 4], &algs),
        Event::hashing_data(4, EventType::EV_SEPARATOR, vec![0; 4], &algs),
        Event::measuring(
            11,
            EventType::EV_IPL,
            b".linux\0",
            ".linux\0".encode_utf16().flat_map(u16::to_le_bytes).collect(),
            &algs,
        ),
        Event::measuring(
            9,
            EventType::EV_EVENT_TAG,
            b"initrd bytes",
            {
                let mut d = 0x8f3b_22ecu32.to_le_bytes().to_vec();
                d.extend_from_slice(&13u32.to_le_bytes());
                d.extend_from_slice(b"Linux initrd\0");
                d
            },
            &algs,
        ),
        Event::hashing_data(16, EventType::EV_EVENT_TAG, b"debug".to_vec(), &algs),
        Event::hashing_data(23, EventType::EV_IPL, b"application".to_vec(), &algs),
    ];
    let tpm = Swtpm::start("sha1,sha256,sha384");
    let tcti = tpm.tcti();
    let dir = tempfile::tempdir().unwrap();
    tpm.extend(&events.iter().map(extend_spec).collect::<Vec<_>>());

    // nodeimg pcrs read == tpm2_pcrread, every PCR of every bank.
    let (ours, theirs) = read_both(dir.path(), &tcti, "sha1:all+sha256:all+sha384:all");
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    assert_eq!(ours, theirs);
    assert_eq!(ours["sha256"].len(), 24);

    // --bank and the text form.
    let run = nodeimg(dir.path(), &["pcrs", "read", "--tcti", &tcti, "--bank", "sha384"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 24, "{run:?}");
    assert!(run.stdout.contains(&format!("sha384 PCR 23  {}", theirs["sha384"]["23"])), "{run:?}");

    // The written log replays to what the TPM holds, by nodeimg and by tpm2_eventlog.
    let log_path: PathBuf = dir.path().join("log.bin");
    std::fs::write(&log_path, eventlog::write(&EventLog::crypto_agile(&algs, events)).unwrap()).unwrap();
    let run = nodeimg(dir.path(), &["eventlog", "replay", "--json", log_path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let replayed: Banks = serde_json::from_value(v["banks"].clone()).unwrap();
    for (bank, pcrs) in &replayed {
        assert_eq!(pcrs.len(), 6, "{bank}: PCRs 4, 7, 9, 11, 16, 23");
        for (pcr, value) in pcrs {
            assert_eq!(value, &theirs[bank][pcr], "{bank} PCR {pcr}: replay vs TPM");
        }
    }
    let el = tool(dir.path(), "tpm2_eventlog", &[log_path.to_str().unwrap()]);
    assert_eq!(el.code, 0, "tpm2_eventlog: {el:?}");
    let rendered = pcrread(&el.stdout[el.stdout.find("pcrs:").expect("tpm2_eventlog printed PCRs") + 5..]);
    assert_eq!(rendered, replayed, "tpm2_eventlog's replay of our log");
    assert_eq!(el.stdout.matches("- EventNum:").count(), 8, "{el:?}");
}

/// The Unix-socket transport, and the one bank a TPM may be set up with, against tpm2_pcrread.
#[test]
fn read_over_a_unix_socket_matches_tpm2_pcrread() {
    let tpm = Swtpm::start_unix("sha384", true);
    let tcti = tpm.tcti();
    let dir = tempfile::tempdir().unwrap();
    tpm.extend(&[(0, "11"), (14, "22"), (23, "33")].map(|(pcr, byte)| format!("{pcr}:sha384={}", byte.repeat(48))));
    let (ours, theirs) = read_both(dir.path(), &tcti, "sha384:all");
    assert_eq!(ours, theirs);
    assert_eq!(ours.keys().collect::<Vec<_>>(), ["sha384"]);
    let run = nodeimg(dir.path(), &["pcrs", "read", "--tcti", &tcti, "--bank", "sha256"]);
    assert_fails(&run, 2, &["has no sha256 bank allocated"]);
}

/// A TPM that was never started answers with an error code, which nodeimg names.
#[test]
fn unstarted_tpm_is_named_as_such() {
    let tpm = Swtpm::start_unix("sha256", false);
    let run = nodeimg(root(), &["pcrs", "read", "--tcti", &tpm.tcti()]);
    assert_fails(&run, 2, &["TPM2_GetCapability", "0x100", "TPM2_Startup"]);
}

#[test]
fn bad_tcti_exits_2() {
    let dir = root();
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", "carrier-pigeon:coo"]);
    assert_fails(&run, 2, &["--tcti \"carrier-pigeon:coo\"", "expected device:PATH"]);
    let port = common::swtpm::free_port_pair();
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", &format!("swtpm:host=127.0.0.1,port={port}")]);
    assert_fails(&run, 2, &["connecting to the TPM at swtpm:host=127.0.0.1"]);
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", "tabrmd"]);
    assert_fails(&run, 2, &["without a TSS", "swtpm:path=SOCKET"]);
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", "device:/nonexistent/tpm9"]);
    assert_fails(&run, 2, &["no TPM at /nonexistent/tpm9"]);
    let run = nodeimg(dir, &["pcrs", "read", "--tcti", "device:/dev/null"]);
    assert_fails(&run, 2, &["device:/dev/null answered a TPM command with nothing: is it a TPM?"]);
    let run = nodeimg(dir, &["pcrs", "read", "--bank", "md5"]);
    assert_fails(&run, 2, &["unknown hash algorithm \"md5\""]);
}
