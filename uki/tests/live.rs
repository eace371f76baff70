//! Live cross-checks against the oracles `make setup` installs: trixie's ukify 257 builds the
//! same UKIs as [`UkiBuilder`] byte for byte, `set_cmdline` on ukify's own output gives what
//! ukify builds with the other command line, and systemd-measure (PCR 11), LIEF and pesign
//! (Authenticode) agree with this crate on what was built.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use uki::{set_cmdline, HashAlg, Pe, Uki};

fn in_trixie() -> PathBuf {
    let path = root().join("scripts/in-trixie");
    assert!(
        root().join("tools/trixie-root/usr/bin/ukify").exists(),
        "tools/trixie-root has no ukify: run `make setup`"
    );
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}; run `make setup`"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Builds with ukify; `args` are ukify's (paths absolute).
fn ukify(dir: &Path, name: &str, args: &[String]) -> Vec<u8> {
    let out = dir.join(name);
    let stub = root().join("tools/uki/linuxx64.efi.stub");
    run(Command::new(in_trixie())
        .args(["ukify", "build", "--stub"])
        .arg(&stub)
        .args(args)
        .arg("--output")
        .arg(&out)
        .current_dir(dir));
    std::fs::read(out).unwrap()
}

/// A deterministic command line of `len` bytes.
fn cmdline(len: usize) -> String {
    (0..len)
        .map(|i| if i % 11 == 10 { ' ' } else { (b'a' + (i % 26) as u8) as char })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[test]
fn ukify_and_uki_builder_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stub = binary("linuxx64.efi.stub");
    let kernel = binary("vmlinuz.unsigned");
    let kernel_path = root().join("tools/uki/vmlinuz.unsigned").display().to_string();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(d.join(name), bytes).unwrap();
        d.join(name).display().to_string()
    };
    let (i3, i4, i5, empty) = (write("i3", b"abc"), write("i4", b"abcd"), write("i5", b"abcde"), write("empty", b""));
    let long = cmdline(513);
    let long_file = format!("{long}\n");
    let cmd_file = write("cmdline", long_file.as_bytes());

    // (name, ukify arguments, the builder with the same inputs)
    let c511 = cmdline(511);
    let messy = " a\tb  c\u{a0}d \n";
    let folded = uki::normalize_cmdline(messy);
    let cases: Vec<(&str, Vec<String>, uki::UkiBuilder)> = vec![
        (
            "three-initrds",
            vec![
                "--linux".into(),
                kernel_path.clone(),
                "--initrd".into(),
                i3.clone(),
                "--initrd".into(),
                i4,
                "--initrd".into(),
                i5,
                format!("--cmdline={c511}"),
                "--os-release=ID=test\n".into(),
            ],
            uki::UkiBuilder::new(&stub, &kernel)
                .initrd(b"abc")
                .initrd(b"abcd")
                .initrd(b"abcde")
                .cmdline(c511.as_bytes())
                .os_release(b"ID=test\n"),
        ),
        (
            "cmdline-file-no-uname",
            vec![
                "--linux".into(),
                kernel_path.clone(),
                format!("--cmdline=@{cmd_file}"),
                "--uname=".into(),
                "--os-release=".into(),
            ],
            uki::UkiBuilder::new(&stub, &kernel).cmdline(long_file.as_bytes()).uname(""),
        ),
        (
            "empty-initrd-messy-cmdline",
            vec![
                "--linux".into(),
                kernel_path.clone(),
                "--initrd".into(),
                empty,
                format!("--cmdline={messy}"),
                "--os-release=".into(),
            ],
            uki::UkiBuilder::new(&stub, &kernel).initrd(b"").cmdline(folded.as_bytes()),
        ),
    ];
    for (name, args, builder) in cases {
        let theirs = ukify(d, &format!("{name}.efi"), &args);
        let ours = builder.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            ours == theirs,
            "{name}: nodeimg's UKI differs from ukify's ({} vs {} bytes)",
            ours.len(),
            theirs.len()
        );
    }

    // set_cmdline on ukify's own UKI gives ukify's UKI with the other command line.
    let short = ukify(
        d,
        "short.efi",
        &["--linux".into(), kernel_path.clone(), "--cmdline=quiet".into(), "--os-release=".into()],
    );
    let longer =
        ukify(d, "long.efi", &["--linux".into(), kernel_path, format!("--cmdline={long}"), "--os-release=".into()]);
    assert!(set_cmdline(&short, long.as_bytes()).unwrap() == longer, "set_cmdline(ukify quiet → long)");
    assert!(set_cmdline(&longer, b"quiet").unwrap() == short, "set_cmdline(ukify long → quiet)");
}

#[test]
fn systemd_measure_lief_and_pesign_agree_on_what_we_build() {
    let dir = tempfile::tempdir().unwrap();
    let stub = binary("linuxx64.efi.stub");
    let kernel = binary("vmlinuz.signed");
    let built = uki::UkiBuilder::new(&stub, &kernel)
        .initrd(b"initrd one")
        .initrd(b"initrd two, a bit longer")
        .cmdline(b"console=ttyS0 nodeimg.live=1")
        .os_release(b"ID=nodeimg\n")
        .build()
        .unwrap();
    let path = dir.path().join("ours.efi");
    std::fs::write(&path, &built).unwrap();
    let p = path.display().to_string();

    let pe_json: serde_json::Value = serde_json::from_str(&run(Command::new(in_trixie()).args([
        "python3",
        &testdata().join("oracle_pe.py").display().to_string(),
        "--measure",
        &p,
    ])))
    .unwrap();
    let venv = root().join(".venv/bin/python");
    assert!(venv.exists(), "{} is missing: run `make setup`", venv.display());
    let auth_json: serde_json::Value =
        serde_json::from_str(&run(Command::new(venv).arg(testdata().join("oracle_authenticode.py")).arg(&p))).unwrap();

    let pe = Pe::parse(&built).unwrap();
    assert_sections(&section_table(&pe), &pe_json[&p]["sections"], "pefile");
    for alg in uki::AUTHENTICODE_ALGS {
        assert_eq!(
            hex::encode(pe.authenticode(alg)),
            hex_of(&auth_json[&p][alg.name()]),
            "Authenticode {alg} (LIEF, pesign)"
        );
    }
    let uki = Uki::from_pe(pe).unwrap();
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        assert_eq!(pcr11(&uki, alg), hex_of(&pe_json[&p]["pcr11"][alg.name()]), "PCR 11 {alg} (systemd-measure)");
    }
}
