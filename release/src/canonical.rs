//! The canonical JSON form: one byte sequence per value.
//!
//! Rules, chosen so that a human can read the file and `cmp` can compare two of them:
//!
//! * object keys sorted by their UTF-8 bytes, at every level;
//! * integers only (a float anywhere is an error: floats have several spellings);
//! * strings escaped as `serde_json` escapes them (`"`, `\`, control characters; other
//!   characters as UTF-8);
//! * [`pretty`]: two-space indentation, `": "` after keys, `[]`/`{}` for empty containers, and a
//!   trailing newline — the form of `bundle.json`;
//! * [`compact`]: no whitespace at all — for payloads embedded in other documents.
//!
//! Hex is lowercase by construction ([`crate::Hex`]).

use serde::Serialize;
use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// A floating-point number: not allowed.
    #[error("{path}: floating-point numbers are not allowed")]
    Float { path: String },
    /// The value did not serialise to JSON.
    #[error("not representable as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// `value` in the pretty canonical form, with a trailing newline.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    let value = serde_json::to_value(value)?;
    let mut out = String::new();
    write(&value, Some(0), "", &mut out)?;
    out.push('\n');
    Ok(out)
}

/// `value` in the compact canonical form (no whitespace, no trailing newline).
pub fn compact<T: Serialize + ?Sized>(value: &T) -> Result<String, CanonicalError> {
    let value = serde_json::to_value(value)?;
    let mut out = String::new();
    write(&value, None, "", &mut out)?;
    Ok(out)
}

fn newline(indent: Option<usize>, out: &mut String) {
    if let Some(n) = indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n));
    }
}

fn write(value: &Value, indent: Option<usize>, path: &str, out: &mut String) -> Result<(), CanonicalError> {
    let inner = indent.map(|n| n + 2);
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => out.push_str(&value.to_string()),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(CanonicalError::Float { path: if path.is_empty() { "/".into() } else { path.into() } });
            }
            out.push_str(&n.to_string());
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(inner, out);
                write(item, inner, &format!("{path}/{i}"), out)?;
            }
            newline(indent, out);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(inner, out);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(item, inner, &format!("{path}/{key}"), out)?;
            }
            newline(indent, out);
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_keys_and_fixed_layout() {
        let v = json!({"b": [1, {"z": null, "a": "x\"y"}], "a": {}, "c": [], "11": true, "4": false});
        assert_eq!(
            pretty(&v).unwrap(),
            "{\n  \"11\": true,\n  \"4\": false,\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"a\": \"x\\\"y\",\n      \
             \"z\": null\n    }\n  ],\n  \"c\": []\n}\n"
        );
        assert_eq!(compact(&v).unwrap(), r#"{"11":true,"4":false,"a":{},"b":[1,{"a":"x\"y","z":null}],"c":[]}"#);
    }

    #[test]
    fn pretty_matches_serde_json_pretty_on_sorted_input() {
        // serde_json's own pretty printer (without preserve_order, maps are sorted) is a second
        // opinion on the layout.
        let v = json!({"a": [1, 2, {"b": "c"}], "d": {"e": []}, "f": "ü\u{1}"});
        assert_eq!(pretty(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap() + "\n");
    }

    #[test]
    fn floats_are_refused_with_their_path() {
        let err = pretty(&json!({"a": [0, 1.5]})).unwrap_err().to_string();
        assert_eq!(err, "/a/1: floating-point numbers are not allowed");
    }
}
