//! Arbitrary bytes as DCAP collateral: as dcap-qvl's JSON, and as the TCB info and QE identity
//! files of a PCS directory (the other files real). Reading must return an error or collateral,
//! and verification with a real quote an error or its check lines, never panic.
#![no_main]

use std::collections::BTreeMap;

use attest::evidence::tdx_quote;
use attest::tdx_verify::{collateral_from_json, collateral_from_pcs_dir, verify, Collateral, TdxInputs};
use libfuzzer_sys::fuzz_target;

const QUOTE: &[u8] = include_bytes!("../../attest/testdata/tdx-quote-v4-dcapqvl.dat");
const COLLATERAL: &[u8] = include_bytes!("../../attest/testdata/tdx-collateral-v4-dcapqvl.json");
/// 2025-07-01T00:00:00Z, inside the collateral's window.
const AT: u64 = 1_751_328_000;

fuzz_target!(|data: &[u8]| {
    let quote = tdx_quote::parse(QUOTE).expect("the fixture parses");
    let run = |c: &Collateral| {
        let allowed = ["UpToDate".to_owned()];
        let inputs = TdxInputs { collateral: c, at: AT, allowed_statuses: &allowed, report_data: None };
        let checks = verify(QUOTE, &quote, &inputs).expect("no report data: never an input error");
        assert!(checks.len() >= 2);
    };
    if let Ok(c) = collateral_from_json(data) {
        run(&c);
    }
    let real = collateral_from_json(COLLATERAL).expect("the fixture reads").0;
    for name in ["tcbinfo.json", "qeidentity.json"] {
        let mut files = BTreeMap::new();
        let body = |k: &str, v: &str, s: &[u8]| format!("{{\"{k}\":{v},\"signature\":\"{}\"}}", hex::encode(s));
        files.insert("tcbinfo.json".to_owned(), body("tcbInfo", &real.tcb_info, &real.tcb_info_signature).into_bytes());
        files.insert(
            "qeidentity.json".to_owned(),
            body("enclaveIdentity", &real.qe_identity, &real.qe_identity_signature).into_bytes(),
        );
        files.insert("tcbinfo-issuer-chain.pem".to_owned(), real.tcb_info_issuer_chain.clone().into_bytes());
        files.insert("qeidentity-issuer-chain.pem".to_owned(), real.qe_identity_issuer_chain.clone().into_bytes());
        files.insert("pckcrl-issuer-chain.pem".to_owned(), real.pck_crl_issuer_chain.clone().into_bytes());
        files.insert("pckcrl.der".to_owned(), real.pck_crl.clone());
        files.insert("rootcacrl.der".to_owned(), real.root_ca_crl.clone());
        files.insert(name.to_owned(), data.to_vec());
        if let Ok(c) = collateral_from_pcs_dir(&files) {
            run(&c);
        }
    }
});
