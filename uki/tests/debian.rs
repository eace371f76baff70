//! The crate against oracles run over real Debian binaries (testdata/debian.json, made by
//! testdata/debian.gen.sh): LIEF and pesign for Authenticode, pefile for section tables, trixie's
//! ukify 257 for assembly, systemd-measure for PCR 11. The pinned binaries come from `make setup`.

mod common;

use common::*;
use serde_json::Value;
use uki::{set_cmdline, BuildError, HashAlg, Pe, Uki};

fn authenticode_json(pe: &Pe<'_>) -> Value {
    serde_json::json!({
        "sha1": hex::encode(pe.authenticode(HashAlg::Sha1)),
        "sha256": hex::encode(pe.authenticode(HashAlg::Sha256)),
        "sha384": hex::encode(pe.authenticode(HashAlg::Sha384)),
    })
}

#[test]
fn debian_binaries_match_lief_pesign_and_pefile() {
    let fixture = debian();
    for (name, want) in fixture["binaries"].as_object().unwrap() {
        let bytes = binary(name);
        let pe = Pe::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(authenticode_json(&pe), want["authenticode"], "{name}: Authenticode digests");
        assert_sections(&section_table(&pe), &want["sections"], name);
        assert_eq!(pe.certificate_table().is_some(), name.ends_with(".signed"), "{name}: signed?");
        let loader_info = uki::loader_info(&pe);
        assert_eq!(loader_info.as_deref(), want["loader_info"].as_str(), "{name}: LoaderInfo");
    }
    let stub = binary("linuxx64.efi.stub");
    let pe = Pe::parse(&stub).unwrap();
    assert_eq!(uki::loader_info(&pe).as_deref().and_then(uki::stub_version), Some("257.13-1~deb13u1"));
}

#[test]
fn signed_and_unsigned_kernel_give_one_digest() {
    let (signed, unsigned) = (binary("vmlinuz.signed"), binary("vmlinuz.unsigned"));
    let (signed, unsigned) = (Pe::parse(&signed).unwrap(), Pe::parse(&unsigned).unwrap());
    assert!(signed.certificate_table().is_some() && unsigned.certificate_table().is_none());
    for alg in uki::AUTHENTICODE_ALGS {
        assert_eq!(signed.authenticode(alg), unsigned.authenticode(alg), "{alg}");
    }
}

#[test]
fn ukify_builds_are_reproduced_byte_for_byte() {
    let fixture = debian();
    let stub = binary("linuxx64.efi.stub");
    for (name, want) in fixture["ukis"].as_object().unwrap() {
        let inputs = Inputs::from_config(&want["config"], &testdata());
        let built = inputs.builder(&stub).build();
        if let Some(error) = want.get("error") {
            assert!(built.is_err(), "{name}: ukify refused ({error}), nodeimg built a UKI");
            continue;
        }
        let built = built.unwrap_or_else(|e| panic!("{name}: {e}"));
        let pe = Pe::parse(&built).unwrap_or_else(|e| panic!("{name}: our UKI does not parse: {e}"));
        assert_sections(&section_table(&pe), &want["sections"], &format!("{name} (pefile on ukify's UKI)"));
        for field in ["size_of_image", "size_of_headers", "size_of_initialized_data", "dll_characteristics"] {
            let ours = match field {
                "size_of_image" => pe.optional_header().size_of_image.get(),
                "size_of_headers" => pe.optional_header().size_of_headers.get(),
                "size_of_initialized_data" => pe.optional_header().size_of_initialized_data.get(),
                _ => pe.optional_header().dll_characteristics.get() as u32,
            };
            assert_eq!(Value::from(ours), want[field], "{name}: {field}");
        }
        assert_eq!(built.len() as u64, want["size"].as_u64().unwrap(), "{name}: file size");
        assert_eq!(
            hex::encode(HashAlg::Sha256.hash(&built)),
            hex_of(&want["sha256"]),
            "{name}: not byte-identical to ukify's UKI"
        );
        assert_eq!(authenticode_json(&pe), want["authenticode"], "{name}: Authenticode (LIEF)");

        let uki = Uki::from_pe(pe).unwrap();
        for alg in [HashAlg::Sha256, HashAlg::Sha384] {
            assert_eq!(pcr11(&uki, alg), hex_of(&want["pcr11"][alg.name()]), "{name}: PCR 11 {alg} (systemd-measure)");
        }
        assert_eq!(uki.stub_version(), Some("257.13-1~deb13u1"), "{name}");
        // ukify inspect: size and sha256 of min(VirtualSize, SizeOfRawData) bytes, and the text.
        for (section, shown) in want["ukify_inspect"].as_object().unwrap() {
            let s = uki.pe().section(section).unwrap();
            let bytes = uki.pe().section_file_bytes(s);
            assert_eq!(bytes.len() as u64, shown["size"].as_u64().unwrap(), "{name} {section}: ukify inspect size");
            assert_eq!(hex::encode(HashAlg::Sha256.hash(bytes)), hex_of(&shown["sha256"]), "{name} {section}");
        }
    }
}

#[test]
fn inner_kernel_is_the_debian_kernel() {
    let fixture = debian();
    let stub = binary("linuxx64.efi.stub");
    let inputs = Inputs::from_config(&fixture["ukis"]["minimal"]["config"], &testdata());
    let built = inputs.builder(&stub).build().unwrap();
    let uki = Uki::parse(&built).unwrap();
    let kernel = Pe::parse(uki.linux()).unwrap();
    assert_eq!(authenticode_json(&kernel), fixture["binaries"]["vmlinuz.signed"]["authenticode"]);
}

#[test]
fn ukify_refusal_is_reproduced() {
    let fixture = debian();
    let want = &fixture["ukis"]["sbat-too-big"];
    assert!(hex_of(&want["error"]).contains("Not enough space in existing section .sbat"), "{want}");
    let stub = binary("linuxx64.efi.stub");
    let inputs = Inputs::from_config(&want["config"], &testdata());
    match inputs.builder(&stub).build() {
        Err(BuildError::DoesNotFit { section, have: 0x200, .. }) if section == ".sbat" => {}
        other => panic!("expected DoesNotFit for .sbat, got {other:?}"),
    }
}

#[test]
fn set_cmdline_gives_what_ukify_builds_with_that_cmdline() {
    let fixture = debian();
    let stub = binary("linuxx64.efi.stub");
    let (a, b) = (&fixture["ukis"]["minimal"], &fixture["ukis"]["cmdline-b"]);
    let (ia, ib) = (Inputs::from_config(&a["config"], &testdata()), Inputs::from_config(&b["config"], &testdata()));
    let built_a = ia.builder(&stub).build().unwrap();
    // Growing: a → b, and shrinking: b → a.
    for (from, to, cmdline, want) in
        [(&built_a, "cmdline-b", &ib.cmdline, b), (&ib.builder(&stub).build().unwrap(), "minimal", &ia.cmdline, a)]
    {
        let changed = set_cmdline(from, cmdline.as_ref().unwrap()).unwrap();
        assert_eq!(hex::encode(HashAlg::Sha256.hash(&changed)), hex_of(&want["sha256"]), "set_cmdline to {to}'s");
    }
}

#[test]
fn set_cmdline_refuses_what_it_cannot_do() {
    let stub = binary("linuxx64.efi.stub");
    assert_eq!(set_cmdline(&stub, b"x"), Err(BuildError::NoCmdline), "a stub has no .cmdline");
    let signed = binary("vmlinuz.signed");
    assert_eq!(set_cmdline(&signed, b"x"), Err(BuildError::SignedUki));
}
