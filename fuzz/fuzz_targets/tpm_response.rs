//! Arbitrary bytes as a TPM's answer to TPM2_GetCapability(PCRS) and TPM2_PCR_Read: parsing must
//! return an error or values consistent with the selection, never panic, and the read loop fed
//! with these bytes must end.
#![no_main]

use attest::tpm::{parse_pcr_allocation, parse_pcr_read, read_pcrs, PcrSelection, TpmError};
use eventlog::AlgId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(banks) = parse_pcr_allocation(data) {
        assert!(banks.iter().all(|b| b.select_bytes <= 8));
    }
    if let Ok(read) = parse_pcr_read(data) {
        assert!(read.values.iter().all(|(_, index, _)| *index < 64));
    }
    let wanted = [PcrSelection { alg: AlgId::SHA256, pcrs: 0xff_ffff, select_bytes: 3 }];
    let mut calls = 0;
    let _ = read_pcrs(&wanted, |_| -> Result<Vec<u8>, TpmError> {
        calls += 1;
        assert!(calls <= 3 * 25, "the read loop must end");
        Ok(data.to_vec())
    });
});
