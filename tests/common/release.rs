//! Releases of the captured real boots (`measure/testdata/boot/`): a build output whose vTPM
//! reference values are `nodeimg measure pcrs`' prediction for the booted inputs (rebuilt by
//! `make setup` under tools/boot/), released with a throwaway key.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{nodeimg, Run};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file of `make setup`'s or of the fixtures, which must exist.
pub fn need(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing: run `make setup`", p.display());
    p
}

/// A path as the `&str` an argument list wants.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The JSON a run printed.
pub fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run:?}"))
}

/// The inputs of one captured boot, as `nodeimg measure pcrs` takes them.
#[derive(Debug, Clone, Copy)]
pub struct BootInputs {
    /// The capture's directory under measure/testdata/boot/.
    pub mode: &'static str,
    /// Its rebuilt inputs under tools/boot/ (uki.efi, gpt.bin, extras).
    pub inputs: &'static str,
    /// The firmware's VARS file, relative to the repository.
    pub vars: &'static str,
    /// `--secure-boot`: whether the firmware code is built with Secure Boot support.
    pub secure_boot: &'static str,
    /// The banks the vTPM allocated.
    pub banks: &'static str,
    /// Credentials and extensions on the ESP (extra.d, loader-credentials).
    pub extras: bool,
}

/// The five captures, as `measure/testdata/boot/README.md` describes them.
pub const BOOTS: [BootInputs; 5] = [
    BootInputs {
        mode: "sb-off",
        inputs: "sb-off",
        vars: "tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF/OVMF_VARS_4M.fd",
        secure_boot: "without",
        banks: "sha256,sha384",
        extras: false,
    },
    BootInputs {
        mode: "sb-on",
        inputs: "sb-on",
        vars: "tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd",
        secure_boot: "with",
        banks: "sha256,sha384",
        extras: false,
    },
    BootInputs {
        mode: "extras",
        inputs: "extras",
        vars: "tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF/OVMF_VARS_4M.fd",
        secure_boot: "without",
        banks: "sha256,sha384",
        extras: true,
    },
    BootInputs {
        mode: "all-banks",
        inputs: "sb-off",
        vars: "tools/ovmf/2025.02-8+deb13u1/usr/share/OVMF/OVMF_VARS_4M.fd",
        secure_boot: "without",
        banks: "sha1,sha256,sha384",
        extras: false,
    },
    BootInputs {
        mode: "sb-setup",
        inputs: "sb-off",
        vars: "tools/ovmf/2022.11-6+deb12u2/usr/share/OVMF/OVMF_VARS_4M.fd",
        secure_boot: "with",
        banks: "sha256,sha384",
        extras: false,
    },
];

impl BootInputs {
    /// A file of the capture (`eventlog.bin`, `pcrs.json`, …).
    pub fn capture(&self, file: &str) -> PathBuf {
        need(&format!("measure/testdata/boot/{}/{file}", self.mode))
    }

    /// The booted UKI, rebuilt by `make setup`.
    pub fn uki(&self) -> PathBuf {
        need(&format!("tools/boot/{}/uki.efi", self.inputs))
    }
}

/// The vTPM platform's reference values for booting `uki` with `boot`'s firmware, disk and
/// banks: `nodeimg measure pcrs`, every predicted PCR enforced, PCR 11 per systemd-measure phase
/// path, and the predicted event log.
pub fn vtpm_reference(d: &Path, boot: &BootInputs, uki: &Path, tag: &str) -> Value {
    let predicted_log = d.join(format!("predicted-{tag}.bin"));
    let vars = need(boot.vars);
    let disk = need(&format!("tools/boot/{}/gpt.bin", boot.inputs));
    let mut args = vec![
        "measure".to_owned(),
        "pcrs".into(),
        "--uki".into(),
        s(uki).into(),
        "--firmware-vars".into(),
        s(&vars).into(),
        "--secure-boot".into(),
        boot.secure_boot.into(),
        "--disk".into(),
        s(&disk).into(),
        "--banks".into(),
        boot.banks.into(),
        "--json".into(),
        "--eventlog-out".into(),
        s(&predicted_log).into(),
    ];
    if boot.extras {
        for (opt, dir) in [("--extra-d", "extra.d"), ("--loader-credentials", "loader-credentials")] {
            args.push(opt.into());
            args.push(s(&need(&format!("tools/boot/{}/{dir}", boot.inputs))).into());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = nodeimg(d, &args);
    assert_eq!(run.code, 0, "{run:?}");
    let p = json_of(&run);
    let mut vtpm = serde_json::Map::new();
    let mut pcr11 = serde_json::Map::new();
    for bank in boot.banks.split(',') {
        let mut pcrs = serde_json::Map::new();
        for (index, value) in p["pcrs"][bank].as_object().unwrap() {
            if index != "11" {
                pcrs.insert(index.clone(), json!({"value": value, "status": "enforced"}));
            }
        }
        vtpm.insert(bank.into(), pcrs.into());
        // systemd-measure's phase paths.
        let phases = &p["pcr11_phases"][bank];
        let mut by_path = serde_json::Map::new();
        let mut path = Vec::new();
        for phase in ["enter-initrd", "leave-initrd", "sysinit", "ready"] {
            path.push(phase);
            by_path.insert(path.join(":"), phases[phase].clone());
        }
        pcr11.insert(bank.into(), by_path.into());
    }
    json!({
        "attestation_variant": "qemu-vtpm",
        "vtpm": vtpm,
        "pcr11": pcr11,
        "eventlog": hex::encode(fs::read(&predicted_log).unwrap()),
    })
}

/// A platform of a build output: name, reference values, artefact files.
pub type PlatformOutput<'a> = (&'a str, Value, Vec<(&'a str, Vec<u8>)>);

/// Writes a build output (`nodeimg build`'s layout) of image `boot-capture` into `dir`.
pub fn build_output(dir: &Path, version: &str, platforms: &[PlatformOutput]) {
    fs::create_dir_all(dir).unwrap();
    let info = json!({
        "image": {"name": "boot-capture", "version": version, "source_date_epoch": 1700000000},
        "provenance": {"nodeimg_version": "0.1.0", "mkosi_version": "25.3",
                       "package_lock_sha256": "00".repeat(32), "source_commit": "0".repeat(40)}
    });
    fs::write(dir.join("build.json"), serde_json::to_vec_pretty(&info).unwrap()).unwrap();
    for (name, values, files) in platforms {
        let p = dir.join(name);
        fs::create_dir_all(&p).unwrap();
        let mut artefacts = Vec::new();
        for (file, bytes) in files {
            fs::write(p.join(file), bytes).unwrap();
            artefacts.push(json!({"name": file, "size": bytes.len(), "sha256": hex::encode(Sha256::digest(bytes))}));
        }
        let manifest = json!({"image": "boot-capture", "version": version, "artefacts": artefacts});
        fs::write(p.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        fs::write(p.join("reference-values.json"), serde_json::to_vec_pretty(values).unwrap()).unwrap();
    }
}

/// A fresh scratch directory `name` under the test target's temporary directory, holding the
/// throwaway key pair `k.key` / `k.pub` that [`release`] signs with.
pub fn keyed_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    let run = nodeimg(&d, &["keygen", "-o", "k", "--unencrypted", "-q"]);
    assert_eq!(run.code, 0, "{run:?}");
    d
}

/// Releases the build output `build` (relative to `d`) with the key `d/k.key` into `d/rel`;
/// returns the bundle's path.
pub fn release(d: &Path, build: &str, version: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["release", "--version", version, "--input", build, "--key", "k.key", "--out", "rel", "-q"];
    args.extend_from_slice(extra);
    let run = nodeimg(d, &args);
    assert_eq!(run.code, 0, "{run:?}");
    let bundle = d.join("rel").join(format!("boot-capture-{version}")).join("bundle.json");
    assert!(bundle.exists(), "{run:?}");
    bundle
}
