//! The JSON Schema of bundle v1 (`schema/bundle-v1.schema.json`), compiled once.

use std::sync::OnceLock;

use serde_json::Value;

use crate::bundle::BundleError;

/// The schema document, as shipped in the repository.
pub const BUNDLE_V1: &str = include_str!("../schema/bundle-v1.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(BUNDLE_V1).expect("the bundle schema is valid JSON");
        jsonschema::draft202012::new(&schema).expect("the bundle schema is a valid draft 2020-12 schema")
    })
}

/// Validates `value` against schema v1; the error names the first offending JSON pointer.
pub fn validate(value: &Value) -> Result<(), BundleError> {
    let mut errors: Vec<(String, String)> =
        validator().iter_errors(value).map(|e| (e.instance_path().to_string(), e.to_string())).collect();
    // Report the deepest, then first, error: it is the most specific.
    errors.sort_by(|a, b| b.0.matches('/').count().cmp(&a.0.matches('/').count()).then(a.0.cmp(&b.0)));
    match errors.into_iter().next() {
        None => Ok(()),
        Some((path, message)) => {
            Err(BundleError::Schema { path: if path.is_empty() { "/".into() } else { path }, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::tests::sample;

    fn value() -> Value {
        serde_json::to_value(sample()).unwrap()
    }

    #[test]
    fn the_schema_is_a_valid_meta_schema_instance() {
        let schema: Value = serde_json::from_str(BUNDLE_V1).unwrap();
        assert!(jsonschema::meta::is_valid(&schema));
    }

    #[test]
    fn the_sample_passes() {
        validate(&value()).unwrap();
    }

    #[test]
    fn the_schema_catches_each_kind_of_mistake() {
        let cases: &[(&str, &str, Value)] = &[
            ("/schema_version", "schema_version", Value::from(2)),
            ("/image/name", "image/name", Value::from("Debian CVM")),
            ("/image/version", "image/version", Value::from("v1.2.3")),
            ("/image/source_date_epoch", "image/source_date_epoch", Value::from(1.5)),
            ("/artefacts/qemu-snp~1disk.raw/sha256", "artefacts/qemu-snp~1disk.raw/sha256", Value::from("AB")),
            (
                "/platforms/qemu-snp/vtpm/sha256/4/value",
                "platforms/qemu-snp/vtpm/sha256/4/value",
                Value::from("00".repeat(48)),
            ),
            (
                "/platforms/qemu-snp/vtpm/sha256/4/status",
                "platforms/qemu-snp/vtpm/sha256/4/status",
                Value::from("maybe"),
            ),
            ("/platforms/qemu-snp/snp/0/vcpus", "platforms/qemu-snp/snp/0/vcpus", Value::from(0)),
            ("/platforms/qemu-tdx/tdx/mrtd", "platforms/qemu-tdx/tdx/mrtd", Value::from("00".repeat(32))),
            ("/provenance/source_commit", "provenance/source_commit", Value::from("main")),
            ("/image", "image/extra", Value::from("x")),
        ];
        for (want_path, pointer, replacement) in cases {
            let mut v = value();
            let (parent, key) = pointer.rsplit_once('/').map(|(p, k)| (format!("/{p}"), k)).unwrap_or_default();
            let key = if key.is_empty() { *pointer } else { key };
            let parent = v.pointer_mut(&parent).unwrap_or_else(|| panic!("{pointer}"));
            parent[key.replace("~1", "/")] = replacement.clone();
            match validate(&v) {
                Err(BundleError::Schema { path, .. }) => assert_eq!(&path, want_path, "{pointer}"),
                other => panic!("{pointer}: expected a schema error, got {other:?}"),
            }
        }
    }

    #[test]
    fn pcr_11_and_unknown_banks_are_refused() {
        let mut v = value();
        let pcr = v["platforms"]["qemu-snp"]["vtpm"]["sha256"]["4"].clone();
        v["platforms"]["qemu-snp"]["vtpm"]["sha256"]["11"] = pcr.clone();
        assert!(validate(&v).is_err(), "PCR 11 in vtpm");
        let mut v = value();
        v["platforms"]["qemu-snp"]["vtpm"]["md5"] = serde_json::json!({});
        assert!(validate(&v).is_err(), "unknown bank");
    }
}
