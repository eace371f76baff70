//! Each exporter against its consumer's documented format: fixtures taken from the consumers'
//! repositories (testdata/README.md), and for in-toto a live check with the in-toto attestation
//! Python bindings (`make setup` installs them into .venv).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use release::export::{constellation, intoto, trustee, Options};
use release::Bundle;
use serde_json::Value;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn example() -> (Bundle, String) {
    let text = read("bundle/example.json");
    (Bundle::parse(text.as_bytes()).unwrap(), text)
}

/// The structure of a JSON document with the values abstracted away: strings become their kind
/// (hex of N bytes, or "string"), objects keyed by decimal indices collapse to one `<index>` key,
/// arrays to their first element (all elements must have the same shape).
fn shape(v: &Value) -> Value {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.len() % 2 == 0
                && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Value::from(format!("hex{}", s.len() / 2))
        }
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
        Value::Array(items) => {
            let shapes: BTreeSet<String> = items.iter().map(|i| shape(i).to_string()).collect();
            assert!(shapes.len() <= 1, "array elements of different shapes: {shapes:?}");
            Value::Array(items.first().map(shape).into_iter().collect())
        }
        Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.bytes().all(|b| b.is_ascii_digit())) => {
            let shapes: BTreeSet<String> = map.values().map(|i| shape(i).to_string()).collect();
            assert!(shapes.len() == 1, "indexed values of different shapes: {shapes:?}");
            serde_json::json!({ "<index>": shape(map.values().next().unwrap()) })
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

#[test]
fn constellation_measurements_match_constellations_own_documents() {
    let (bundle, _) = example();
    let ours: Value =
        serde_json::from_str(&constellation::export(&bundle, &Options::default(), "-", "stable").unwrap()).unwrap();
    for fixture in ["constellation/measurements-v2-azure.json", "constellation/measurements-v2-dummy.json"] {
        let theirs: Value = serde_json::from_str(&read(fixture)).unwrap();
        // Our model of the format reads Constellation's document (unknown fields are errors).
        serde_json::from_value::<constellation::MeasurementsV2>(theirs.clone()).unwrap();
        // Same top-level structure, and each vTPM entry has exactly the shape of theirs.
        let mut top = theirs.clone();
        top["list"] = Value::Array(vec![]);
        let mut our_top = ours.clone();
        our_top["list"] = Value::Array(vec![]);
        assert_eq!(shape(&our_top), shape(&top), "{fixture}: top level");
        let their_entry = shape(&theirs["list"][0]);
        let vtpm = ours["list"].as_array().unwrap().iter().find(|e| e["attestationVariant"] == "qemu-vtpm").unwrap();
        assert_eq!(shape(vtpm), their_entry, "{fixture}: vTPM entry");
    }
    // TDX entries differ only in the length of `expected` (48 bytes, which Constellation accepts).
    let tdx = ours["list"].as_array().unwrap().iter().find(|e| e["attestationVariant"] == "qemu-tdx").unwrap();
    assert_eq!(shape(&tdx["measurements"]), serde_json::json!({"<index>": {"expected": "hex48", "warnOnly": "bool"}}));
    // Constellation parses `version` as a semantic version with a leading v.
    assert_eq!(ours["version"], "v1.2.3");
    assert_eq!(ours["list"][0]["csp"], "QEMU");
}

#[test]
fn trustee_message_matches_the_rvps_readme_and_default_policy() {
    let (bundle, _) = example();
    let policy_names: BTreeSet<String> = read("trustee/default-policy-names.txt").lines().map(str::to_owned).collect();
    let decode = |m: &trustee::Message| -> Value {
        let payload = base64::engine::general_purpose::STANDARD.decode(&m.payload).expect("standard base64");
        serde_json::from_slice(&payload).expect("payload is JSON")
    };

    let theirs: trustee::Message = serde_json::from_str(&read("trustee/rvps-message.json")).unwrap();
    let ours: trustee::Message = serde_json::from_str(&trustee::export(&bundle, &Options::default()).unwrap()).unwrap();
    assert_eq!((ours.version.as_str(), ours.kind.as_str()), (theirs.version.as_str(), theirs.kind.as_str()));
    // The README's payload and ours are both {name: [string, …]}.
    let their_payload = decode(&theirs);
    assert_eq!(their_payload, serde_json::from_str::<Value>(&read("trustee/sample")).unwrap());
    let our_payload = decode(&ours);
    let as_names = |v: &Value| -> Vec<String> {
        v.as_object()
            .unwrap()
            .iter()
            // Arrays of strings, but for snp_smt_allowed: a boolean, which the policy tests with ==.
            .inspect(|(k, vals)| match vals.as_array() {
                Some(a) => assert!(a.iter().all(Value::is_string), "{k}"),
                None => assert!(k.as_str() == "snp_smt_allowed" && vals.is_boolean(), "{k}"),
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    as_names(&their_payload);
    for name in as_names(&our_payload) {
        assert!(policy_names.contains(&name), "{name} is not queried by Trustee's default policy");
    }
    for name in trustee::NAMES {
        assert!(policy_names.contains(name), "{name} is not queried by Trustee's default policy");
    }
    assert_eq!(our_payload["snp_launch_measurement"].as_array().unwrap().len(), 2);
    assert_eq!(our_payload["mr_td"][0].as_str().unwrap().len(), 96);
}

#[test]
fn intoto_statement_has_the_shape_of_the_spec_examples() {
    let (bundle, text) = example();
    let ours: Value = serde_json::from_str(
        &intoto::export(&bundle, text.as_bytes(), &Options::default(), intoto::DEFAULT_BUILDER_ID).unwrap(),
    )
    .unwrap();
    let statement: Value = serde_json::from_str(&read("intoto/statement.json")).unwrap();
    let provenance: Value = serde_json::from_str(&read("intoto/provenance.json")).unwrap();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&ours), keys(&statement));
    assert_eq!(ours["_type"], statement["_type"]);
    assert_eq!(keys(&ours["subject"][0]), keys(&statement["subject"][0]));
    assert_eq!(keys(&ours["predicate"]), keys(&provenance));
    let subset = |a: &Value, b: &Value, what: &str| {
        assert!(keys(a).is_subset(&keys(b)), "{what}: {:?} not within {:?}", keys(a), keys(b));
    };
    subset(&ours["predicate"]["buildDefinition"], &provenance["buildDefinition"], "buildDefinition");
    subset(&ours["predicate"]["runDetails"], &provenance["runDetails"], "runDetails");
    subset(&ours["predicate"]["runDetails"]["builder"], &provenance["runDetails"]["builder"], "builder");
    assert_eq!(ours["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(ours["subject"].as_array().unwrap().len(), bundle.artefacts.len());
}

fn python_check(mode: &str, doc: &str) -> (bool, String) {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/intoto_check.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): run `make setup`", python.display()));
    child.stdin.take().unwrap().write_all(doc.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "in-toto-attestation is not installed: run `make setup`\n{stderr}"
    );
    (out.status.success(), stderr)
}

#[test]
fn intoto_statement_passes_the_in_toto_python_bindings() {
    // The checker accepts the bindings' own examples and rejects a broken one ...
    assert!(python_check("statement", &read("intoto/statement.json")).0);
    assert!(python_check("provenance", &read("intoto/provenance.json")).0);
    let broken = read("intoto/statement.json").replace("Statement/v1", "Statement/v9");
    assert!(!python_check("statement", &broken).0, "a wrong _type must fail");
    // ... and accepts ours.
    let (bundle, text) = example();
    for platform in [None, Some("qemu-tdx")] {
        let opts = Options { platform: platform.map(str::to_owned), ..Default::default() };
        let doc = intoto::export(&bundle, text.as_bytes(), &opts, "https://example.com/builder").unwrap();
        let (ok, stderr) = python_check("slsa", &doc);
        assert!(ok, "{platform:?}: {stderr}\n{doc}");
    }
}
