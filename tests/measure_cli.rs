//! `nodeimg measure snp|tdx`, the real binary: values from the oracle fixture tables
//! (measure/testdata, made by sev-snp-measure, td-shim and dstack-mr), a live side-by-side run
//! of sev-snp-measure, `--json`, and bad input (exit 2, saying what and where).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_fails, nodeimg, tool};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn trixie_ovmf() -> PathBuf {
    let p = root().join("tools/ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd");
    assert!(p.exists(), "{} missing: run make setup", p.display());
    p
}

fn amdsev() -> PathBuf {
    root().join("measure/testdata/ovmf_AmdSev_suffix.bin")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The oracle's value for the fixture row whose columns 0, 3..=11 are `key`.
fn snp_fixture(key: &[&str]) -> String {
    let text = std::fs::read_to_string(root().join("measure/testdata/snp-oracle.tsv")).unwrap();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let k: Vec<&str> = [&c[0..1], &c[3..12]].concat();
        if k == key {
            return c[12].to_string();
        }
    }
    panic!("no fixture row {key:?}")
}

#[test]
fn snp_matches_fixture_rows() {
    let d = root();
    let fw = trixie_ovmf();
    let t = "tools:ovmf/2025.02-8+deb13u1/usr/share/ovmf/OVMF.fd";
    let kernel = d.join("measure/testdata/snp-kernel.bin");
    let initrd = d.join("measure/testdata/snp-initrd.bin");
    let cmdline = "console=ttyS0 root=/dev/vda2 ro quiet";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--vcpus", "64", "--vcpu-type", "EPYC-Milan"],
            vec![t, "64", "type:EPYC-Milan", "QEMU", "0x1", "-", "-", "-", "-", "hex"],
        ),
        // Case-insensitive VMM and vCPU type names (sev-snp-measure is case-sensitive).
        (
            vec!["--vcpus", "4", "--vmm-type", "EC2", "--guest-features", "0x21"],
            vec![t, "4", "-", "ec2", "0x21", "-", "-", "-", "-", "hex"],
        ),
        (vec!["--vcpus", "64", "--vmm-type", "GCE"], vec![t, "64", "-", "gce", "0x1", "-", "-", "-", "-", "hex"]),
        (
            vec!["--vcpus", "2", "--vcpu-family", "26", "--vcpu-model", "0", "--vcpu-stepping", "0"],
            vec![t, "2", "fms:26/0/0", "QEMU", "0x1", "-", "-", "-", "-", "hex"],
        ),
        (
            vec!["--vcpus", "2", "--vcpu-sig", "10489617"],
            vec![t, "2", "sig:10489617", "QEMU", "0x1", "-", "-", "-", "-", "hex"],
        ),
        (
            vec!["--vcpus", "8", "--vcpu-type", "epyc-v4", "--guest-features", "0x21", "--output-format", "base64"],
            vec![t, "8", "type:EPYC-v4", "QEMU", "0x21", "-", "-", "-", "-", "base64"],
        ),
        (vec!["--mode", "snp:ovmf-hash"], vec![t, "-", "-", "-", "-", "-", "-", "-", "-", "hex"]),
    ];
    for (args, key) in &cases {
        let run = nodeimg(&d, &[&["measure", "snp", "--ovmf", s(&fw)][..], args].concat());
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert_eq!(run.stdout.trim(), snp_fixture(key), "{args:?}");
    }

    // Measured direct boot on the AmdSev fixture, with every input.
    let run = nodeimg(
        &d,
        &[
            "measure",
            "snp",
            "--ovmf",
            s(&amdsev()),
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
            "--vmm-type",
            "gce",
            "--guest-features",
            "0x21",
            "--kernel",
            s(&kernel),
            "--initrd",
            s(&initrd),
            "--append",
            cmdline,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let key = [
        "testdata:ovmf_AmdSev_suffix.bin",
        "4",
        "type:EPYC-Milan",
        "gce",
        "0x21",
        "testdata:snp-kernel.bin",
        "testdata:snp-initrd.bin",
        cmdline,
        "-",
        "hex",
    ];
    assert_eq!(run.stdout.trim(), snp_fixture(&key));
}

#[test]
fn snp_live_side_by_side() {
    let d = root();
    let oracle = d.join(".venv/bin/sev-snp-measure");
    let fw = trixie_ovmf();
    let kernel = d.join("measure/testdata/snp-kernel.bin");
    let cases: &[&[&str]] = &[
        &["--vcpus", "3", "--vcpu-type", "EPYC-Rome"],
        &["--vcpus", "17", "--vmm-type", "ec2", "--guest-features", "0x3"],
        &["--vcpus", "5", "--vmm-type", "gce", "--output-format", "base64"],
    ];
    for args in cases {
        let ours = nodeimg(&d, &[&["measure", "snp", "--ovmf", s(&fw)][..], args].concat());
        let theirs = tool(&d, s(&oracle), &[&["--mode", "snp", "--ovmf", s(&fw)][..], args].concat());
        assert_eq!(theirs.code, 0, "{args:?}: {theirs:?}");
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}: {ours:?}");
    }
    let args = ["--vcpus", "2", "--vcpu-type", "EPYC", "--kernel", s(&kernel), "--append", "x y"];
    let ours = nodeimg(&d, &[&["measure", "snp", "--ovmf", s(&amdsev())][..], &args].concat());
    let theirs = tool(&d, s(&oracle), &[&["--mode", "snp", "--ovmf", s(&amdsev())][..], &args].concat());
    assert_eq!(ours.stdout, theirs.stdout, "{ours:?}");
}

#[test]
fn snp_json_has_inputs_and_pages() {
    let d = root();
    let run = nodeimg(
        &d,
        &[
            "measure",
            "snp",
            "--ovmf",
            s(&amdsev()),
            "--vcpus",
            "3",
            "--vcpu-type",
            "EPYC-v4",
            "--vmm-type",
            "ec2",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["mode"], "snp");
    assert_eq!(v["vcpus"], 3);
    assert_eq!(v["vmm_type"], "ec2");
    assert_eq!(v["vcpu_sig"], "0x800f12");
    assert_eq!(v["measurement"], v["digest"]);
    let pages = v["pages"].as_array().unwrap();
    assert_eq!(pages[0]["what"], "firmware");
    assert_eq!(pages[0]["gpa"], "0xfffff000");
    // EC2 measures the CPUID page after the other metadata pages, just before the VMSAs.
    let types: Vec<&str> = pages.iter().map(|p| p["page_type"].as_str().unwrap()).collect();
    assert_eq!(&types[types.len() - 3..], ["cpuid", "vmsa", "vmsa"]);
    assert_eq!(pages.last().unwrap()["pages"], 2);
    assert_eq!(pages.last().unwrap()["digest_after"], v["digest"]);
}

#[test]
fn tdx_matches_fixture_and_json() {
    let d = root();
    let fw = trixie_ovmf();
    let text = std::fs::read_to_string(d.join("measure/testdata/tdx-mrtd.tsv")).unwrap();
    let want = |order: &str| {
        text.lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|c| c[0].starts_with("ovmf/2025.02") && c[2] == order)
            .map(|c| c[3].to_string())
            .unwrap()
    };
    let run = nodeimg(&d, &["measure", "tdx", "--ovmf", s(&fw)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), want("single-pass"), "default order is single-pass");
    let run = nodeimg(&d, &["measure", "tdx", "--ovmf", s(&fw), "--page-add-order", "two-pass", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["mrtd"], want("two-pass"));
    assert_eq!(v["page_add_order"], "two-pass");
    let secs = v["sections"].as_array().unwrap();
    assert_eq!(secs[0]["type"], "BFV");
    assert_eq!(secs[0]["chunks_extended"], secs[0]["pages_added"].as_u64().unwrap() * 16);
    assert_eq!(secs[1]["type"], "CFV");
    assert_eq!(secs[1]["chunks_extended"], 0);
}

#[test]
fn bad_input_exits_2_saying_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("zero.fd"), vec![0u8; 8192]).unwrap();
    let fw = trixie_ovmf();
    let snp = |extra: &[&str]| nodeimg(d, &[&["measure", "snp"][..], extra].concat());

    assert_fails(
        &snp(&["--ovmf", "zero.fd", "--vcpus", "1", "--vcpu-type", "EPYC"]),
        2,
        &["zero.fd", "no OVMF footer table", "0x1fd0"],
    );
    assert_fails(&nodeimg(d, &["measure", "tdx", "--ovmf", "zero.fd"]), 2, &["zero.fd", "no OVMF footer table"]);
    assert_fails(&snp(&["--ovmf", s(&fw), "--vcpus", "0", "--vcpu-type", "EPYC"]), 2, &["--vcpus", "0"]);
    assert_fails(
        &snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vcpu-type", "Skylake"]),
        2,
        &["unknown vCPU type 'Skylake'", "EPYC-Milan"],
    );
    assert_fails(&snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vmm-type", "kvm"]), 2, &["unknown VMM type 'kvm'"]);
    assert_fails(&snp(&["--ovmf", s(&fw), "--vcpus", "1"]), 2, &["missing --vcpu-type"]);
    assert_fails(&snp(&["--ovmf", s(&fw), "--vcpu-type", "EPYC"]), 2, &["missing --vcpus"]);
    assert_fails(
        &snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vcpu-type", "EPYC", "--vcpu-sig", "1"]),
        2,
        &["cannot be used with"],
    );
    assert_fails(&snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vcpu-type", "EPYC", "--initrd", "x"]), 2, &["--kernel"]);
    assert_fails(
        &snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vcpu-type", "EPYC", "--snp-ovmf-hash", "abcd"]),
        2,
        &["48 bytes"],
    );
    assert_fails(&snp(&["--ovmf", "missing.fd", "--vcpus", "1", "--vcpu-type", "EPYC"]), 2, &["missing.fd"]);
    let huge = std::fs::File::create(d.join("huge.img")).unwrap();
    huge.set_len(1 << 30).unwrap(); // sparse
    assert_fails(&nodeimg(d, &["measure", "tdx", "--ovmf", "huge.img"]), 2, &["huge.img", "not a firmware image"]);
    // Debian's OVMF.fd is the generic build: no page for kernel hashes.
    assert_fails(
        &snp(&["--ovmf", s(&fw), "--vcpus", "1", "--vcpu-type", "EPYC", "--kernel", s(&fw)]),
        2,
        &["no SNP_KERNEL_HASHES section"],
    );
    // The AmdSev fixture is only the last 4 KiB of its image: its TDVF sections lie outside.
    assert_fails(
        &nodeimg(d, &["measure", "tdx", "--ovmf", s(&amdsev())]),
        2,
        &["TDVF section 0 (BFV, entry at offset 0x640)", "outside the 4096-byte image"],
    );

    // One flipped byte in the SEV metadata signature ("ASEV" at 0x548 from the end).
    let mut bytes = std::fs::read(amdsev()).unwrap();
    let at = bytes.len() - 0x554;
    bytes[at] ^= 1;
    std::fs::write(d.join("flipped.fd"), &bytes).unwrap();
    assert_fails(
        &snp(&["--ovmf", "flipped.fd", "--vcpus", "1", "--vcpu-type", "EPYC"]),
        2,
        &["flipped.fd", &format!("SEV metadata header at offset {at:#x}"), "ASEV"],
    );
}
