//! Our Trustee export, judged by Trustee's own default CPU policy.
//!
//! `testdata/trustee/ear_default_policy_cpu.rego` is Trustee's policy file byte for byte (at the
//! commit `testdata/trustee-policy.gen.sh` pins), evaluated with `regorus`, the Rego engine
//! Trustee's attestation service uses, at the version and features its `Cargo.lock` pins. What
//! the attestation service does around the engine is repeated here from its source, not guessed:
//!
//! * **RVPS** (`rvps/src/lib.rs` `verify_and_extract`, `extractors/sample/mod.rs`): a message of
//!   version `0.1.0` and type `sample`; its payload, standard base64, is a JSON object whose
//!   every value is stored under its name as it is, *replacing* what the name held.
//! * **`query_reference_value`** (`attestation-service/src/ear_token/broker.rs` `issue`): a
//!   one-argument Rego extension that returns the stored value, or `null` for an unknown name.
//! * **Input** (`broker.rs` `transform_claims`): the verifier's claims under the TEE's name
//!   (`tpm`, `tdx`), with `init_data` and `report_data` moved up beside them.
//! * **Claims** of the TPM verifier (`deps/verifier/src/tpm/mod.rs` `parse_tee_evidence`,
//!   `extend_claim`): `ak_public` as the attester sent it, `init_data` (PCR 8), `report_data`
//!   (the quote's nonce) and `pcr00`…`pcr23`, lowercase hex of the sha256 bank. The TDX claims
//!   are Trustee's own output for a quote (`parse_tdx_claims_expected.json`).
//! * **Verdict** (`broker.rs`; the `ear` crate 0.5.0 `TrustClaim::tier`,
//!   `Appraisal::update_status_from_trust_vector`): every trust claim has a tier — −1…1 none,
//!   2…31 affirming, 32…95 warning, else contraindicated (and the negatives alike) — and the
//!   appraisal's status is the worst of them. `affirming` is what KBS resource policies ask for.
//!
//! The evidence is ours where we have it: the PCRs a real boot's kernel read from its vTPM
//! (`measure/testdata/boot/sb-off/pcrs.json`), PCR 11 as systemd-measure computes it for that
//! UKI once booted to `ready` (`systemd-measure-phases.json`: the captured boot's busybox initrd
//! runs no systemd-pcrextend), and the AK of Trustee's own TPM evidence fixture. The reference
//! values are nodeimg's: the boot-chain model's prediction for the same UKI (rebuilt by `make
//! setup` into `tools/boot/`), made into a bundle platform as `nodeimg build` does, exported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use release::bundle::{Bundle, HashAlg, Image, Platform, Provenance, Tdx, SCHEMA_VERSION};
use release::export::{trustee, Options};
use release::hex::Hex;
use serde_json::{json, Value};

const POLICY: &str = include_str!("../testdata/trustee/ear_default_policy_cpu.rego");

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e} (run `make setup`)", path.display()))
}

fn json_file(path: PathBuf) -> Value {
    serde_json::from_slice(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The RVPS after registering `messages` in order.
fn rvps(messages: &[&str]) -> BTreeMap<String, Value> {
    let mut store = BTreeMap::new();
    for m in messages {
        let m: Value = serde_json::from_str(m).unwrap();
        assert_eq!(m["version"], "0.1.0", "RVPS refuses other message versions");
        assert_eq!(m["type"], "sample");
        let payload = base64::engine::general_purpose::STANDARD.decode(m["payload"].as_str().unwrap()).unwrap();
        let rvs: BTreeMap<String, Value> = serde_json::from_slice(&payload).unwrap();
        store.extend(rvs);
    }
    store
}

/// AR4SI tiers as the `ear` crate orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    None,
    Affirming,
    Warning,
    Contraindicated,
}

fn tier(v: i64) -> Tier {
    if (-1..=1).contains(&v) {
        Tier::None
    } else if (-32..32).contains(&v) {
        Tier::Affirming
    } else if (-96..96).contains(&v) {
        Tier::Warning
    } else {
        Tier::Contraindicated
    }
}

/// What the attestation service concludes: the trust claims and the status.
#[derive(Debug)]
struct Appraisal {
    claims: BTreeMap<String, i64>,
    status: Tier,
}

/// Evaluates Trustee's default policy over `input` with `store` behind `query_reference_value`.
fn appraise(store: &BTreeMap<String, Value>, input: &Value) -> Appraisal {
    let mut engine = regorus::Engine::new();
    engine.add_policy(String::new(), POLICY.to_owned()).expect("Trustee's policy parses");
    engine.set_input_json(&input.to_string()).unwrap();
    let store = store.clone();
    engine
        .add_extension(
            "query_reference_value".into(),
            1,
            Box::new(move |params: Vec<regorus::Value>| -> anyhow::Result<regorus::Value> {
                anyhow::ensure!(params.len() == 1, "query_reference_value takes one parameter");
                let id = params[0].as_string()?.to_string();
                Ok(match store.get(&id) {
                    Some(v) => serde_json::from_value(v.clone())?,
                    None => regorus::Value::Null,
                })
            }),
        )
        .unwrap();
    let trust = engine.eval_rule("data.policy.trust_claims".into()).expect("trust_claims evaluates");
    engine.eval_rule("data.policy.extensions".into()).expect("extensions evaluate");
    let trust: BTreeMap<String, i64> = serde_json::from_value(serde_json::to_value(trust).unwrap()).unwrap();
    let status = trust.values().map(|v| tier(*v)).max().unwrap_or(Tier::None);
    Appraisal { claims: trust, status }
}

/// The real boot's PCRs (sha256) as Trustee's TPM verifier names them, PCR 11 replaced by `pcr11`.
fn tpm_input(ak_public: &str, pcr11: &str) -> Value {
    let pcrs = json_file(crate_dir().join("../measure/testdata/boot/sb-off/pcrs.json"));
    let mut tpm = serde_json::Map::new();
    for i in 0..24 {
        let v = pcrs["sha256"][i.to_string()].as_str().unwrap_or_else(|| panic!("PCR {i} in pcrs.json"));
        tpm.insert(format!("pcr{i:02}"), Value::from(v.to_ascii_lowercase()));
    }
    tpm.insert("pcr11".into(), pcr11.into());
    tpm.insert("ak_public".into(), ak_public.into());
    let init_data = tpm["pcr08"].clone();
    json!({
        "init_data": init_data,
        "init_data_claims": null,
        "report_data": "00".repeat(32),
        "runtime_data_claims": null,
        "tpm": tpm,
    })
}

/// PCR 11 (sha256) as systemd-measure 257 computes it for the sb-off UKI at `phase`
/// (`""`: no phase, what the captured boot's vTPM holds).
fn systemd_measure_pcr11(phase: &str) -> String {
    let doc = json_file(crate_dir().join("../measure/testdata/boot/systemd-measure-phases.json"));
    let entry = doc["sha256"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.get("phase").and_then(Value::as_str).unwrap_or("") == phase)
        .unwrap_or_else(|| panic!("phase {phase:?} in systemd-measure-phases.json"));
    entry["hash"].as_str().unwrap().to_owned()
}

fn trustee_ak() -> String {
    json_file(crate_dir().join("testdata/trustee/tpm_evidence.json"))["ak_public"].as_str().unwrap().to_owned()
}

fn bundle(version: &str, platforms: BTreeMap<String, Platform>) -> Bundle {
    let b = Bundle {
        schema_version: SCHEMA_VERSION,
        image: Image { name: "debian-cvm".into(), version: version.into(), source_date_epoch: 1_700_000_000 },
        artefacts: BTreeMap::new(),
        platforms,
        provenance: Provenance {
            nodeimg_version: "0.1.0".into(),
            mkosi_version: "25.3".into(),
            package_lock_sha256: Hex(vec![0x33; 32]),
            source_commit: None,
            profile_tree_sha256: None,
            package_source: None,
            package_archive: None,
            firmware: Vec::new(),
        },
    };
    b.check().expect("a valid bundle");
    b
}

/// Release N: the qemu platform as `nodeimg build` makes it from the model's prediction of the
/// booted UKI.
fn release_n() -> Bundle {
    let uki = read(&crate_dir().join("../tools/boot/sb-off/uki.efi"));
    let inputs = measure::boot::BootInputs { banks: vec![HashAlg::Sha256], ..measure::boot::BootInputs::new(&uki) };
    let prediction = measure::boot::predict(&inputs).expect("the model predicts the fixture UKI");
    let platform = release::input::vtpm_reference_values(&prediction, "qemu-vtpm", &[4, 9, 12, 13]).unwrap();
    bundle("1.0.0", BTreeMap::from([("qemu".to_owned(), platform)]))
}

/// A release whose only reference value is PCR 11 `value` at `phase`.
fn release_with_pcr11(version: &str, phase: &str, value: &str) -> Bundle {
    let platform = Platform {
        attestation_variant: "qemu-vtpm".into(),
        pcr11: BTreeMap::from([(
            HashAlg::Sha256,
            BTreeMap::from([(phase.to_owned(), Hex(hex::decode(value).unwrap()))]),
        )]),
        ..Default::default()
    };
    bundle(version, BTreeMap::from([("qemu".to_owned(), platform)]))
}

fn export(bundles: &[&Bundle], aks: &[String]) -> String {
    trustee::export_message(bundles, &Options::default(), aks).unwrap()
}

#[test]
fn the_real_boot_is_what_systemd_measure_says() {
    // The chain the evidence rests on: the captured vTPM's PCR 11 is systemd-measure's value
    // with no phase, so its `ready` value is what the same boot reports once systemd is up.
    let pcrs = json_file(crate_dir().join("../measure/testdata/boot/sb-off/pcrs.json"));
    assert_eq!(pcrs["sha256"]["11"].as_str().unwrap().to_ascii_lowercase(), systemd_measure_pcr11(""));
}

#[test]
fn genuine_node_is_affirming_in_the_tpm_branch() {
    let n = release_n();
    let ak_pem = read(&crate_dir().join("testdata/trustee/ak.pem"));
    let aks = vec![trustee::ak_public(&ak_pem).unwrap()];
    let store = rvps(&[&export(&[&n], &aks)]);
    let ready = systemd_measure_pcr11("enter-initrd:leave-initrd:sysinit:ready");

    let genuine = appraise(&store, &tpm_input(&trustee_ak(), &ready));
    assert_eq!(genuine.status, Tier::Affirming, "{genuine:?}");
    assert_eq!((genuine.claims["executables"], genuine.claims["hardware"]), (3, 2), "{genuine:?}");

    // PCR 11 one bit off: executables falls back to 33 ("not recognized"), a warning.
    let mut tampered = hex::decode(&ready).unwrap();
    tampered[0] ^= 1;
    let bad = appraise(&store, &tpm_input(&trustee_ak(), &hex::encode(tampered)));
    assert_eq!((bad.claims["executables"], bad.status), (33, Tier::Warning), "{bad:?}");

    // A node stopped before `ready` (the captured boot itself) is not the latest phase.
    let early = appraise(&store, &tpm_input(&trustee_ak(), &systemd_measure_pcr11("")));
    assert_ne!(early.status, Tier::Affirming, "{early:?}");

    // Without trusted_aks the TPM branch never affirms, and another AK is not trusted.
    let no_aks = rvps(&[&export(&[&n], &[])]);
    let r = appraise(&no_aks, &tpm_input(&trustee_ak(), &ready));
    assert_eq!((r.claims["executables"], r.status), (33, Tier::Warning), "{r:?}");
    let mut other = base64::engine::general_purpose::STANDARD.decode(trustee_ak()).unwrap();
    let last = other.len() - 6; // inside the modulus
    other[last] ^= 1;
    let r = appraise(&store, &tpm_input(&base64::engine::general_purpose::STANDARD.encode(other), &ready));
    assert_eq!((r.claims["executables"], r.status), (33, Tier::Warning), "{r:?}");
}

#[test]
fn rolling_upgrade_accepts_n_and_n_plus_1_and_no_third() {
    let aks = vec![trustee_ak()];
    let n = release_n();
    // Releases N+1 and N+2 are other UKIs; their PCR 11 values are systemd-measure's (systemd's
    // TEST-70 vectors, `measure/testdata/systemd-measure/expected.json`: phase "foo", and no phase).
    let test70 = json_file(crate_dir().join("../measure/testdata/systemd-measure/expected.json"));
    let test70 = |phase: Option<&str>| -> String {
        let e = test70["sha256"].as_array().unwrap().iter().find(|e| e.get("phase").and_then(Value::as_str) == phase);
        e.unwrap()["hash"].as_str().unwrap().to_owned()
    };
    let (v1, v2) = (test70(Some("foo")), test70(None));
    let n1 = release_with_pcr11("1.1.0", "foo", &v1);
    let n2 = release_with_pcr11("1.2.0", "enter-initrd", &v2);
    let ready = systemd_measure_pcr11("enter-initrd:leave-initrd:sysinit:ready");
    let status =
        |store: &BTreeMap<String, Value>, pcr11: &str| appraise(store, &tpm_input(&trustee_ak(), pcr11)).status;

    let both = rvps(&[&export(&[&n, &n1], &aks)]);
    assert_eq!(status(&both, &ready), Tier::Affirming, "a node of release N");
    assert_eq!(status(&both, &v1), Tier::Affirming, "a node of release N+1");
    assert_eq!(status(&both, &v2), Tier::Warning, "a node of a third release");
    // …which its own release's export accepts, once N is retired.
    let next = rvps(&[&export(&[&n1, &n2], &aks)]);
    assert_eq!((status(&next, &v2), status(&next, &ready)), (Tier::Affirming, Tier::Warning));

    // RVPS replaces a name's values: registering N+1 alone after N drops N.
    let replaced = rvps(&[&export(&[&n], &aks), &export(&[&n1], &aks)]);
    assert_eq!(status(&replaced, &ready), Tier::Warning, "N after N+1 was registered alone");
    assert_eq!(status(&replaced, &v1), Tier::Affirming);
}

#[test]
fn tdx_names_meet_trustees_own_tdx_claims() {
    // Trustee's TDX verifier's claims for its quote fixture, as its own test expects them, plus
    // what its verifier adds after checking Intel's collateral (tdx/mod.rs): taken as good here.
    let mut claims = json_file(crate_dir().join("testdata/trustee/parse_tdx_claims_expected.json"));
    claims["tcb_status"] = "UpToDate".into();
    claims["collateral_expiration_status"] = "0".into();
    let body = claims["quote"]["body"].clone();
    let h = |k: &str| Hex(hex::decode(body[k].as_str().unwrap()).unwrap());
    let tdx = |rtmr1: Hex| Platform {
        attestation_variant: "qemu-tdx".into(),
        tdx: Some(Tdx { mrtd: h("mr_td"), rtmr: BTreeMap::from([(1, rtmr1), (2, h("rtmr_2"))]) }),
        ..Default::default()
    };
    let input =
        |claims: &Value| json!({"init_data": claims["init_data"], "report_data": claims["report_data"], "tdx": claims});

    let b = bundle("1.0.0", BTreeMap::from([("qemu-tdx".to_owned(), tdx(h("rtmr_1")))]));
    let store = rvps(&[&export(&[&b], &[])]);
    let r = appraise(&store, &input(&claims));
    // mr_td accepted (hardware 2); RTMR 1 and 2 accepted, without the tdvfkernel event values
    // the first executables rule also asks for (4: "Grub boot", still affirming).
    assert_eq!((r.claims["hardware"], r.claims["executables"]), (2, 4), "{r:?}");
    // This quote is of a debug TD, and nodeimg exports no xfam: configuration stays 36.
    assert_eq!(r.claims["configuration"], 36, "{r:?}");
    assert!(!store.contains_key("xfam"));

    let mut other = h("rtmr_1");
    other.0[47] ^= 1;
    let b = bundle("1.0.0", BTreeMap::from([("qemu-tdx".to_owned(), tdx(other))]));
    let r = appraise(&rvps(&[&export(&[&b], &[])]), &input(&claims));
    assert_eq!(r.claims["executables"], 33, "{r:?}");
}

#[test]
fn snp_names_meet_the_claims_of_a_real_report() {
    // Trustee's own VLEK report fixture (attest/testdata), turned into the claims of its SNP
    // verifier (`deps/verifier/src/snp/mod.rs` `parse_tee_evidence`) field for field.
    let bytes = read(&crate_dir().join("../attest/testdata/snp-report-v3-milan-vlek.bin"));
    let r = attest::evidence::snp_report::parse(&bytes).unwrap();
    let claims = json!({
        "policy_abi_major": r.policy.abi_major,
        "policy_abi_minor": r.policy.abi_minor,
        "policy_smt_allowed": r.policy.smt_allowed,
        "policy_migrate_ma": r.policy.migrate_ma_allowed,
        "policy_debug_allowed": r.policy.debug_allowed,
        "policy_single_socket": r.policy.single_socket_required,
        "reported_tcb_bootloader": r.reported_tcb.bootloader,
        "reported_tcb_tee": r.reported_tcb.tee,
        "reported_tcb_snp": r.reported_tcb.snp,
        "reported_tcb_microcode": r.reported_tcb.microcode,
        "platform_tsme_enabled": r.platform_info.tsme_enabled,
        "platform_smt_enabled": r.platform_info.smt_enabled,
        "measurement": hex::encode(r.measurement),
        "chip_id": hex::encode(r.chip_id),
    });
    let input =
        json!({"init_data": hex::encode(r.host_data), "report_data": hex::encode(r.report_data), "snp": claims});
    // What the bundle cannot know, registered by the user: the host's TCB (the values Trustee's
    // verify_report_tcb checked for this report: testdata/README.md) and platform settings.
    let user = json!({
        "snp_bootloader": [4], "snp_microcode": [217], "snp_snp_svn": [24], "snp_tee_svn": [0],
        "snp_smt_enabled": r.platform_info.smt_enabled, "snp_tsme_enabled": r.platform_info.tsme_enabled,
        "snp_guest_abi_major": r.policy.abi_major, "snp_guest_abi_minor": r.policy.abi_minor,
        "snp_single_socket": r.policy.single_socket_required,
    });
    let user = json!({"version": "0.1.0", "type": "sample",
        "payload": base64::engine::general_purpose::STANDARD.encode(user.to_string())})
    .to_string();
    let snp = |digest: [u8; 48], smt: bool| {
        let platform = Platform {
            attestation_variant: "qemu-vtpm".into(),
            snp: vec![release::bundle::SnpLaunchDigest {
                vcpus: 1,
                vcpu_type: None,
                vcpu_sig: 0,
                vmm_type: "qemu".into(),
                guest_features: 1,
                launch_digest: Hex(digest.to_vec()),
            }],
            snp_policy: Some(release::bundle::SnpPolicy { smt }),
            ..Default::default()
        };
        rvps(&[&export(&[&bundle("1.0.0", BTreeMap::from([("qemu".to_owned(), platform)]))], &[]), &user])
    };
    let ok = appraise(&snp(r.measurement, r.policy.smt_allowed), &input);
    let trust = |a: &Appraisal| (a.claims["executables"], a.claims["hardware"], a.claims["configuration"]);
    assert_eq!((trust(&ok), ok.status), ((3, 2, 2), Tier::Affirming), "{ok:?}");
    // snp_smt_allowed is compared with ==: the other value falls back to configuration 3.
    let other_smt = appraise(&snp(r.measurement, !r.policy.smt_allowed), &input);
    assert_eq!(trust(&other_smt), (3, 2, 3), "{other_smt:?}");
    let mut digest = r.measurement;
    digest[0] ^= 1;
    let other_digest = appraise(&snp(digest, r.policy.smt_allowed), &input);
    assert_eq!((other_digest.claims["executables"], other_digest.status), (33, Tier::Warning), "{other_digest:?}");
    // Without the user's TCB values the SNP branch is contraindicated, whatever the image.
    let mut alone = snp(r.measurement, r.policy.smt_allowed);
    alone.retain(|name, _| trustee::NAMES.contains(&name.as_str()));
    let alone = appraise(&alone, &input);
    assert_eq!((alone.claims["hardware"], alone.status), (97, Tier::Contraindicated), "{alone:?}");
}
