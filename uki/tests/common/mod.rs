//! Helpers shared by the cross-tool tests: fixture paths, the pinned Debian binaries, and the
//! ukify configurations of testdata/debian.json.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use uki::{normalize_cmdline, HashAlg, UkiBuilder};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn debian() -> Value {
    json(&testdata().join("debian.json"))
}

/// A pinned Debian binary from tools/uki, checked to be the one the fixtures were made from.
pub fn binary(name: &str) -> Vec<u8> {
    let path = root().join("tools/uki").join(name);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make setup` (`nodeimg setup --test-inputs`)", path.display()));
    let want = debian()["binaries"][name]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        hex::encode(HashAlg::Sha256.hash(&bytes)),
        want,
        "{} is not the binary testdata/debian.json was made from; run `make setup`",
        path.display()
    );
    bytes
}

pub fn hex_of(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

/// The owned inputs of one ukify configuration (see testdata/gen_debian.py).
#[derive(Debug, Default)]
pub struct Inputs {
    pub linux: Vec<u8>,
    pub initrds: Vec<Vec<u8>>,
    pub cmdline: Option<Vec<u8>>,
    pub os_release: Option<Vec<u8>>,
    pub uname: Option<String>,
    pub sbat: Vec<String>,
    pub splash: Option<Vec<u8>>,
    pub devicetree: Option<Vec<u8>>,
    pub pcrpkey: Option<Vec<u8>>,
    pub microcode: Option<Vec<u8>>,
}

impl Inputs {
    /// Reads a configuration: `[[option, value], …]` with ukify's conventions (text options are
    /// taken as text, `opt@` options name a file read verbatim).
    pub fn from_config(config: &Value, base: &Path) -> Inputs {
        let mut i = Inputs::default();
        let file = |v: &str| std::fs::read(base.join(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
        for pair in config.as_array().unwrap() {
            let (opt, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            match opt {
                "linux" => i.linux = binary(value),
                "linux@inputs" => i.linux = file(value),
                "initrd" => i.initrds.push(file(value)),
                "cmdline" => i.cmdline = Some(normalize_cmdline(value).into_bytes()).filter(|c| !c.is_empty()),
                "cmdline@" => i.cmdline = Some(file(value)),
                "os-release" => i.os_release = Some(value.as_bytes().to_vec()).filter(|o| !o.is_empty()),
                "os-release@" => i.os_release = Some(file(value)),
                "uname" => i.uname = Some(value.to_owned()),
                "sbat" => i.sbat.push(value.to_owned()),
                "sbat@" => i.sbat.push(String::from_utf8(file(value)).unwrap()),
                "splash" => i.splash = Some(file(value)),
                "devicetree" => i.devicetree = Some(file(value)),
                "pcrpkey" => i.pcrpkey = Some(file(value)),
                "microcode" => i.microcode = Some(file(value)),
                other => panic!("unknown option {other} in {config}"),
            }
        }
        i
    }

    pub fn builder<'a>(&'a self, stub: &'a [u8]) -> UkiBuilder<'a> {
        let mut b = UkiBuilder::new(stub, &self.linux);
        for initrd in &self.initrds {
            b = b.initrd(initrd);
        }
        if let Some(c) = &self.cmdline {
            b = b.cmdline(c);
        }
        if let Some(o) = &self.os_release {
            b = b.os_release(o);
        }
        if let Some(u) = &self.uname {
            b = b.uname(u);
        }
        for s in &self.sbat {
            b = b.sbat(s.clone());
        }
        if let Some(s) = &self.splash {
            b = b.splash(s);
        }
        if let Some(d) = &self.devicetree {
            b = b.devicetree(d);
        }
        if let Some(p) = &self.pcrpkey {
            b = b.pcrpkey(p);
        }
        if let Some(m) = &self.microcode {
            b = b.microcode(m);
        }
        b
    }
}

/// PCR 11 after systemd-stub's section measurements (no boot phase): for each measured section,
/// extend with the digest of its name including the NUL, then with the digest of its bytes.
pub fn pcr11(uki: &uki::Uki<'_>, alg: HashAlg) -> String {
    let mut pcr = vec![0u8; alg.size()];
    for s in uki.measured_sections() {
        for event in [alg.hash(format!("{}\0", s.name).as_bytes()), s.bytes.digest(alg)] {
            pcr = alg.hash(&[pcr, event].concat());
        }
    }
    hex::encode(pcr)
}

/// The section table of a PE image in the shape of testdata/debian.json's `sections`.
pub fn section_table(pe: &uki::Pe<'_>) -> Value {
    let jobs: Vec<_> = pe.sections().iter().map(|s| pe.section_measured(s)).collect();
    Value::Array(
        pe.sections()
            .iter()
            .zip(&jobs)
            .map(|(s, m)| {
                serde_json::json!({
                    "name": s.name,
                    "virtual_address": s.virtual_address,
                    "virtual_size": s.virtual_size,
                    "raw_size": s.raw_size,
                    "offset": s.offset,
                    "characteristics": s.characteristics,
                    "sha256": hex::encode(m.digest(HashAlg::Sha256)),
                    "sha384": hex::encode(m.digest(HashAlg::Sha384)),
                })
            })
            .collect(),
    )
}

/// Compares section tables entry by entry, naming the first difference.
pub fn assert_sections(ours: &Value, want: &Value, context: &str) {
    let (ours, want) = (ours.as_array().unwrap(), want.as_array().unwrap());
    let names = |t: &[Value]| t.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(ours), names(want), "{context}: section names and order");
    for (o, w) in ours.iter().zip(want) {
        for (field, value) in w.as_object().unwrap() {
            assert_eq!(&o[field], value, "{context}: section {} {field}", w["name"]);
        }
    }
}
