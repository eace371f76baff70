//! SEV-SNP launch digests against sev-snp-measure 0.0.13.
//!
//! `testdata/snp-oracle.tsv` holds the oracle's output for 143 launches (see
//! `testdata/snp-oracle.gen.sh`); `fixture_table` recomputes each with this crate. The Debian
//! firmware it names is unpacked under tools/ by `make setup`. `live_oracle` runs the oracle
//! itself (from .venv, also `make setup`) on every row and compares it with this crate, so a
//! stale table cannot hide a difference.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use measure::snp::{self, KernelHashes, SnpFirmware, SnpLaunch, Vmm};
use sha2::{Digest, Sha256};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug)]
struct Row {
    line: usize,
    firmware: String,
    sha256: String,
    mode: String,
    vcpus: String,
    cpu: String,
    vmm: String,
    features: String,
    kernel: String,
    initrd: String,
    append: String,
    ovmf_hash: String,
    format: String,
    expected: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(Path::new(MANIFEST).join("testdata/snp-oracle.tsv")).unwrap();
    text.lines()
        .enumerate()
        .skip(1)
        .map(|(i, l)| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 13, "snp-oracle.tsv line {}: {l:?}", i + 1);
            let s = |k: usize| c[k].to_string();
            Row {
                line: i + 1,
                firmware: s(0),
                sha256: s(1),
                mode: s(2),
                vcpus: s(3),
                cpu: s(4),
                vmm: s(5),
                features: s(6),
                kernel: s(7),
                initrd: s(8),
                append: s(9),
                ovmf_hash: s(10),
                format: s(11),
                expected: s(12),
            }
        })
        .collect()
}

fn path_of(spec: &str) -> PathBuf {
    if let Some(p) = spec.strip_prefix("tools:") {
        Path::new(MANIFEST).join("../tools").join(p)
    } else if let Some(p) = spec.strip_prefix("testdata:") {
        Path::new(MANIFEST).join("testdata").join(p)
    } else {
        panic!("bad firmware spec {spec}")
    }
}

fn read_firmware(row: &Row) -> Vec<u8> {
    let p = path_of(&row.firmware);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run make setup)", p.display()));
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        row.sha256,
        "{} is not the firmware the table was made for",
        p.display()
    );
    bytes
}

fn parse_int(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap(),
    }
}

/// What this crate computes for `row`, formatted as the oracle prints it.
fn ours(row: &Row, fw_bytes: &[u8]) -> String {
    let fw = SnpFirmware::parse(fw_bytes).unwrap_or_else(|e| panic!("line {}: {e}", row.line));
    if row.mode == "snp:ovmf-hash" {
        return hex::encode(fw.ovmf_hash());
    }
    let vcpu_sig = match row.cpu.split_once(':') {
        Some(("type", name)) => Some(snp::vcpu_type_sig(name).unwrap()),
        Some(("sig", v)) => Some(parse_int(v) as u32),
        Some(("fms", v)) => {
            let n: Vec<u32> = v.split('/').map(|x| x.parse().unwrap()).collect();
            Some(snp::cpu_sig(n[0], n[1], n[2]))
        }
        _ => None,
    };
    let file = |s: &str| (s != "-").then(|| std::fs::read(path_of(s)).unwrap());
    let kernel = file(&row.kernel).map(|k| {
        let initrd = file(&row.initrd);
        KernelHashes::new(&k, initrd.as_deref(), (row.append != "-").then_some(row.append.as_str()))
    });
    let launch = SnpLaunch {
        vcpus: row.vcpus.parse().unwrap(),
        vcpu_sig,
        vmm: row.vmm.parse::<Vmm>().unwrap(),
        guest_features: parse_int(&row.features),
        kernel,
        ovmf_hash: (row.ovmf_hash != "-").then(|| hex::decode(&row.ovmf_hash).unwrap().try_into().unwrap()),
    };
    let ld = snp::launch_digest(&fw, &launch).unwrap_or_else(|e| panic!("line {}: {e}", row.line)).digest;
    match row.format.as_str() {
        "base64" => base64::engine::general_purpose::STANDARD.encode(ld),
        _ => hex::encode(ld),
    }
}

#[test]
fn fixture_table() {
    let rows = rows();
    assert!(rows.len() > 100);
    for row in &rows {
        let fw = read_firmware(row);
        assert_eq!(ours(row, &fw), row.expected, "snp-oracle.tsv line {}: {row:?}", row.line);
    }
}

#[test]
fn live_oracle() {
    let oracle = Path::new(MANIFEST).join("../.venv/bin/sev-snp-measure");
    let version = Command::new(&oracle)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run make setup to install the sev-snp-measure oracle", oracle.display()));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), "sev-snp-measure 0.0.13");
    for row in rows() {
        let fw = read_firmware(&row);
        let mut cmd = Command::new(&oracle);
        cmd.args(["--mode", &row.mode, "--ovmf"]).arg(path_of(&row.firmware));
        if row.mode == "snp" {
            cmd.args(["--vcpus", &row.vcpus, "--vmm-type", &row.vmm, "--guest-features", &row.features]);
            cmd.args(["--output-format", &row.format]);
            match row.cpu.split_once(':') {
                Some(("type", v)) => cmd.args(["--vcpu-type", v]),
                Some(("sig", v)) => cmd.args(["--vcpu-sig", v]),
                Some(("fms", v)) => {
                    let n: Vec<&str> = v.split('/').collect();
                    cmd.args(["--vcpu-family", n[0], "--vcpu-model", n[1], "--vcpu-stepping", n[2]])
                }
                _ => &mut cmd,
            };
            for (flag, v) in [("--kernel", &row.kernel), ("--initrd", &row.initrd)] {
                if v != "-" {
                    cmd.arg(flag).arg(path_of(v));
                }
            }
            for (flag, v) in [("--append", &row.append), ("--snp-ovmf-hash", &row.ovmf_hash)] {
                if v != "-" {
                    cmd.args([flag, v]);
                }
            }
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "line {}: {cmd:?}: {}", row.line, String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert_eq!(ours(&row, &fw), theirs, "line {}: {cmd:?}", row.line);
        assert_eq!(theirs, row.expected, "line {}: the oracle no longer gives the committed value", row.line);
    }
}
