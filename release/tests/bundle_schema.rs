//! The bundle schema file and the canonical form, checked with tools other than our own code:
//! the `jsonschema` validator on the committed schema file, and Python's `json` module as an
//! independent canonical serialiser (sorted keys, two-space indent).

use std::path::PathBuf;
use std::process::Command;

use release::Bundle;
use serde_json::Value;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn the_example_bundle_validates_against_the_schema_file() {
    let schema: Value = serde_json::from_slice(&std::fs::read(path("schema/bundle-v1.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
    let example: Value = serde_json::from_slice(&std::fs::read(path("testdata/bundle/example.json")).unwrap()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&example).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(release::schema::BUNDLE_V1, std::fs::read_to_string(path("schema/bundle-v1.schema.json")).unwrap());
}

#[test]
fn python_json_agrees_on_the_canonical_form() {
    let file = path("testdata/bundle/example.json");
    let bytes = std::fs::read(&file).unwrap();
    let bundle = Bundle::parse(&bytes).expect("the example is canonical");
    assert_eq!(bundle.to_canonical_json().unwrap().as_bytes(), &bytes[..]);
    let out = Command::new("python3")
        .args(["-c", "import json,sys; sys.stdout.write(json.dumps(json.load(open(sys.argv[1])), sort_keys=True, indent=2) + '\\n')"])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == bytes, "python's sorted, indented JSON differs from our canonical form");
}
