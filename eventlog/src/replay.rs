//! Re-doing a log's extensions to get the register values it accounts for.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::types::{AlgId, EventLog, EventType, HashAlg, LogFormat, Register};

/// Why a log cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// An extended event has no digest for one of the log's banks.
    #[error("event {number} (offset {offset:#x}, {register}) has no {alg} digest")]
    MissingDigest {
        /// Event number (header = 0).
        number: usize,
        /// Byte offset, 0 for built logs.
        offset: u64,
        /// The register it extends.
        register: Register,
        /// The missing bank.
        alg: AlgId,
    },
    /// A CCEL event names MRTD, which the TDX module measures and no log can extend.
    #[error("event {number} (offset {offset:#x}) extends MRTD (CC MR index 0), which a log cannot")]
    Mrtd {
        /// Event number (header = 0).
        number: usize,
        /// Byte offset.
        offset: u64,
    },
}

/// The register values a log replays to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The log's format: whether the keys are PCRs or RTMRs.
    pub format: LogFormat,
    /// Per bank, the value of every register at least one event extended, keyed by PCR
    /// number (RTMR number for a CCEL). Registers no event touched keep their reset value and
    /// are not listed.
    #[serde(serialize_with = "banks_hex")]
    pub banks: BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
    /// Banks the log carries that this crate cannot compute (SM3, SHA-3): not replayed.
    pub unsupported: Vec<AlgId>,
    /// The locality a `StartupLocality` event gave (PCR 0 then starts at that value).
    pub startup_locality: Option<u8>,
}

impl Replayed {
    /// The value of `register` in `alg`'s bank, if any event extended it.
    pub fn value(&self, alg: HashAlg, register: u32) -> Option<&[u8]> {
        self.banks.get(&alg)?.get(&register).map(Vec::as_slice)
    }
}

/// `StartupLocality` event data: the 16-byte signature, then the locality (PFP 1.05,
/// "Startup Locality Event"): an `EV_NO_ACTION` in PCR 0 that sets PCR 0's initial value to
/// the locality from which TPM2_Startup was issued (0, or 3 / 4 with an H-CRTM).
const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// Replays `log`: starting from reset values, extends each non-`EV_NO_ACTION` event's digest
/// into its register, in every bank this crate can compute.
pub fn replay(log: &EventLog) -> Result<Replayed, ReplayError> {
    let algs = log.algorithms();
    let (known, unsupported): (Vec<AlgId>, Vec<AlgId>) = algs.iter().partition(|a| HashAlg::from_id(**a).is_some());
    let known: Vec<HashAlg> = known.into_iter().filter_map(HashAlg::from_id).collect();
    let mut banks: BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>> = known.iter().map(|a| (*a, BTreeMap::new())).collect();
    let mut startup_locality = None;
    for (i, event) in log.events.iter().enumerate() {
        let number = log.number(i);
        let offset = log.offsets.get(i).copied().unwrap_or(0);
        if !event.is_extended() {
            if log.format != LogFormat::Ccel
                && event.pcr == 0
                && event.event_type == EventType::EV_NO_ACTION
                && event.data.len() == STARTUP_LOCALITY.len() + 1
                && event.data.starts_with(STARTUP_LOCALITY)
            {
                startup_locality = Some(event.data[STARTUP_LOCALITY.len()]);
            }
            continue;
        }
        let register = log.register(event);
        if register == Register::Mrtd {
            return Err(ReplayError::Mrtd { number, offset });
        }
        for alg in &known {
            let digest =
                event.digest(alg.id()).ok_or(ReplayError::MissingDigest { number, offset, register, alg: alg.id() })?;
            let bank = banks.get_mut(alg).expect("every known bank was inserted");
            let value = bank.entry(register.number()).or_insert_with(|| {
                let mut v = alg.zeros();
                if let (Register::Pcr(0), Some(l)) = (register, startup_locality) {
                    *v.last_mut().expect("digests are not empty") = l;
                }
                v
            });
            *value = alg.extend(value, digest);
        }
    }
    Ok(Replayed { format: log.format, banks, unsupported, startup_locality })
}

/// Banks as `{"sha256": {"0": "hex", …}, …}`.
fn banks_hex<S: Serializer>(banks: &BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(banks.len()))?;
    for (alg, regs) in banks {
        let regs: BTreeMap<u32, String> = regs.iter().map(|(k, v)| (*k, hex::encode(v))).collect();
        m.serialize_entry(alg.name(), &regs)?;
    }
    m.end()
}
