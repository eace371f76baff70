//! Keylime: a `tpm_policy`, a measured-boot reference state for UKI boots, and the policy module
//! that evaluates it.
//!
//! Keylime's verifier checks a node in two ways, and this exporter feeds both (Keylime 7.14.3;
//! files under `keylime/` of its repository, tag `v7.14.3`):
//!
//! * **`tpm_policy`** (`keylime_tenant --tpm_policy JSON`; `tpm/tpm_util.py` `readPolicy`): an
//!   object mapping a PCR index (a decimal string, 0–23 but never 10, IMA's, or 16, Keylime's
//!   data PCR) to the list of values it accepts, lowercase hex without `0x`. The verifier compares
//!   each quoted PCR with its list (`tpm/tpm_main.py` `check_pcrs`), in the bank the agent quotes
//!   (its `tpm_hash_alg`). [`tpm_policy`] lists every enforced PCR of the bundle and PCR 11 at the
//!   chosen boot phase ([`Options::pcr11_in`]: `ready`, a fully booted node, unless
//!   `--pcr11-phase` says otherwise), with the value of every bank the bundle predicts: values of
//!   different banks have different lengths, so a list holding sha256 and sha384 values matches
//!   a quote in either bank and cannot confuse them. Observed PCRs (read from a running instance,
//!   the firmware's) are left out: Keylime has no "warn only", and they change with the
//!   firmware.
//! * **measured boot** (`--mb-policy FILE`, or a named policy: `keylime_tenant -c addmbpolicy`
//!   and `--mb-policy-name`): the agent sends the firmware event log; the verifier replays it
//!   against the quote's PCRs and evaluates it with the policy engine named by
//!   `measured_boot_policy_name` in verifier.conf, given the registered reference state
//!   (`mba/elchecking/elchecker.py` `bootlog_evaluate`). Keylime's shipped `example` policy
//!   expects shim → grub → kernel and rejects every UKI boot, so the export carries its own
//!   engine, [`POLICY_MODULE`] (`release/keylime/nodeimg_uki.py`, registered as
//!   [`POLICY_NAME`], built on `mba/elchecking/tests.py` and `policies.py`), and the
//!   [`Refstate`] it reads: per release and platform, the bundle's predicted event log, PCR by
//!   PCR, for the PCRs the release enforces. The engine accepts a log whose events in each listed
//!   PCR are exactly those, type and digest in every bank the event carries.
//!
//! **PCR 11.** systemd-pcrphase extends PCR 11 after the firmware log ends (`enter-initrd`,
//! `leave-initrd`, `sysinit`, `ready`: systemd's `docs/TPM2_PCR_MEASUREMENTS.md`), so on a
//! booted node the quoted PCR 11 never equals the log's replay. Keylime replays only the PCRs
//! the active policy declares relevant (`Tpm.mb_pcrs_to_check`, keylime commit `1c5fe759`, "tpm:
//! use only policy's relevant PCRs for event log verification", first in 7.14.3), and
//! `nodeimg-uki` leaves PCR 11 (and 15, systemd's userspace PCR) out. The refstate still lists
//! PCR 11's events (systemd-stub's UKI sections: a tampered `.cmdline` is named), but only the
//! `tpm_policy` binds PCR 11 to the quote, at the chosen phase; PCR 4 (the UKI's Authenticode
//! digest covers every section) and PCR 9 (the command line and initrd the kernel received) bind
//! the UKI through the replayed log.
//!
//! **Several releases** ([`export_releases`]): the refstate lists a boot per (release,
//! platform) and accepts a log matching any one of them; the `tpm_policy` accepts, per PCR, the
//! value of any of them. A `tpm_policy` cannot say "PCR 4 of release N together with PCR 9 of
//! release N": the refstate can.
//!
//! Before writing a boot, its predicted log is replayed and must give the bundle's values of the
//! PCRs it lists (PCR 11: the log's part, which no bundle value states, is not compared), so the
//! refstate and the `tpm_policy` never disagree about a release.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ExportError, Options};
use crate::bundle::{Bundle, PcrStatus, Platform};
use crate::canonical;

/// The policy module, `nodeimg_uki.py`: what verifier.conf's `measured_boot_imports` names.
pub const POLICY_MODULE: &str = include_str!("../../keylime/nodeimg_uki.py");
/// The file name of [`POLICY_MODULE`] (the module `nodeimg_uki`).
pub const POLICY_MODULE_FILE: &str = "nodeimg_uki.py";
/// The name the module registers its policy under: verifier.conf's `measured_boot_policy_name`.
pub const POLICY_NAME: &str = "nodeimg-uki";
/// The refstate format version the module reads (`"nodeimg_uki": 1`).
pub const REFSTATE_VERSION: u64 = 1;

/// Keylime's `MEASUREDBOOT_PCRS` (`keylime/config.py`): the PCRs whose log events a measured-boot
/// policy sees. A refstate lists only these.
pub const MEASURED_BOOT_PCRS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15];
/// `config.IMA_PCR` and `config.TPM_DATA_PCR`, which `readPolicy` refuses in a tpm_policy.
pub const RESERVED_PCRS: [u8; 2] = [10, 16];
/// The PCRs `nodeimg-uki` declares relevant (replayed against the quote): the measured-boot
/// PCRs without 11 and 15, which systemd extends after the firmware log.
pub const RELEVANT_PCRS: [u8; 13] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14];

/// The measured-boot reference state `nodeimg-uki` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refstate {
    /// Format version: [`REFSTATE_VERSION`].
    pub nodeimg_uki: u64,
    /// The boots it accepts, one per (release, platform), sorted by name.
    pub boots: Vec<Boot>,
}

/// One accepted boot: a platform of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    /// `IMAGE VERSION PLATFORM`, named in the verifier's reasons for a rejection.
    pub name: String,
    /// The predicted extended events by PCR index (a decimal string, as Keylime's JSON keys are).
    pub pcrs: BTreeMap<String, Vec<RefEvent>>,
}

/// One predicted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefEvent {
    /// The event type as `tpm2_eventlog` names it (`EV_IPL`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// What the event says it measured, for people (not checked: the digests are).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub about: String,
    /// The digest per bank, `0x` and lowercase hex (Keylime's refstate convention,
    /// `mba/elchecking/example.py`).
    pub digests: BTreeMap<String, String>,
}

/// What `nodeimg export --format keylime` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// `tpm_policy.json`, canonical JSON.
    pub tpm_policy: String,
    /// `refstate.json`, canonical JSON.
    pub refstate: String,
    /// The PCRs `tpm_policy` lists, ascending.
    pub tpm_policy_pcrs: Vec<u8>,
    /// How many boots the refstate accepts.
    pub boots: usize,
}

/// The `tpm_policy` and refstate of `bundle`.
pub fn export(bundle: &Bundle, opts: &Options) -> Result<Export, ExportError> {
    export_releases(&[bundle], opts)
}

/// The `tpm_policy` and refstate accepting every release in `bundles`.
pub fn export_releases(bundles: &[&Bundle], opts: &Options) -> Result<Export, ExportError> {
    let policy = tpm_policy(bundles, opts)?;
    let state = refstate(bundles, opts)?;
    let mut tpm_policy_pcrs: Vec<u8> = policy.keys().filter_map(|k| k.parse().ok()).collect();
    tpm_policy_pcrs.sort_unstable();
    Ok(Export {
        tpm_policy: canonical::pretty(&policy)?,
        refstate: canonical::pretty(&state)?,
        tpm_policy_pcrs,
        boots: state.boots.len(),
    })
}

/// The vTPM platforms of `bundles` that `opts` selects, with the release they belong to. A
/// platform without vTPM values (SEV-SNP or TDX only) is skipped, unless it was asked for.
fn vtpm_platforms<'a>(
    bundles: &[&'a Bundle],
    opts: &Options,
) -> Result<Vec<(&'a Bundle, &'a str, &'a Platform)>, ExportError> {
    let mut out = Vec::new();
    for bundle in bundles {
        for (name, platform) in opts.platforms(bundle)? {
            if platform.vtpm.is_empty() && platform.pcr11.is_empty() {
                if opts.platform.is_some() {
                    return Err(ExportError::Unsupported {
                        platform: name.into(),
                        message: "no vTPM PCR values: Keylime attests a TPM".into(),
                    });
                }
                continue;
            }
            out.push((*bundle, name, platform));
        }
    }
    if out.is_empty() {
        return Err(ExportError::Unsupported {
            platform: opts.platform.clone().unwrap_or_else(|| "(all)".into()),
            message: "no platform with vTPM PCR values to export".into(),
        });
    }
    Ok(out)
}

/// The PCRs of `platform` that the release enforces (any bank), and 11 if it has PCR 11 values.
fn enforced_pcrs(platform: &Platform) -> BTreeSet<u8> {
    let mut pcrs: BTreeSet<u8> = platform
        .vtpm
        .values()
        .flat_map(|bank| bank.iter().filter(|(_, p)| p.status == PcrStatus::Enforced).map(|(i, _)| *i))
        .collect();
    if !platform.pcr11.is_empty() {
        pcrs.insert(11);
    }
    pcrs
}

/// The `tpm_policy` object: PCR index → accepted values (every bank, every release), sorted.
pub fn tpm_policy(bundles: &[&Bundle], opts: &Options) -> Result<BTreeMap<String, Vec<String>>, ExportError> {
    let mut policy: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for (_, name, platform) in vtpm_platforms(bundles, opts)? {
        for (bank, pcrs) in &platform.vtpm {
            for (index, pcr) in pcrs.iter().filter(|(_, p)| p.status == PcrStatus::Enforced) {
                policy.entry(*index).or_default().insert(pcr.value.to_string());
            }
            if let Some(v) = opts.pcr11_in(name, platform, *bank)? {
                policy.entry(11).or_default().insert(v.to_string());
            }
        }
        // A bank with PCR 11 values only.
        for bank in platform.pcr11.keys().filter(|b| !platform.vtpm.contains_key(b)) {
            if let Some(v) = opts.pcr11_in(name, platform, *bank)? {
                policy.entry(11).or_default().insert(v.to_string());
            }
        }
    }
    // `readPolicy` refuses IMA's PCR and the one Keylime binds the agent's data to.
    if let Some(bad) = policy.keys().find(|i| RESERVED_PCRS.contains(i)) {
        return Err(ExportError::Unsupported {
            platform: opts.platform.clone().unwrap_or_else(|| "(all)".into()),
            message: format!(
                "PCR {bad} is reserved by Keylime (10: IMA, 16: its data PCR); a tpm_policy cannot hold it"
            ),
        });
    }
    Ok(policy.into_iter().map(|(i, v)| (i.to_string(), v.into_iter().collect())).collect())
}

/// The refstate: one boot per selected vTPM platform of each release.
pub fn refstate(bundles: &[&Bundle], opts: &Options) -> Result<Refstate, ExportError> {
    let mut boots = Vec::new();
    for (bundle, name, platform) in vtpm_platforms(bundles, opts)? {
        let boot_name = format!("{} {} {name}", bundle.image.name, bundle.image.version);
        boots.push(boot(&boot_name, name, platform)?);
    }
    boots.sort_by(|a, b| a.name.cmp(&b.name));
    boots.dedup();
    Ok(Refstate { nodeimg_uki: REFSTATE_VERSION, boots })
}

/// The predicted events of `platform`'s enforced PCRs, checked against its PCR values.
fn boot(boot_name: &str, name: &str, platform: &Platform) -> Result<Boot, ExportError> {
    let unsupported = |message: String| ExportError::Unsupported { platform: name.into(), message };
    let bytes = platform.eventlog.as_ref().ok_or_else(|| {
        unsupported("the bundle has no predicted event log for it (a measured-boot refstate is made from one)".into())
    })?;
    let log = eventlog::parse(bytes.as_bytes())
        .map_err(|e| unsupported(format!("the bundle's predicted event log does not parse: {e}")))?;
    let pcrs = enforced_pcrs(platform);
    if let Some(bad) = pcrs.iter().find(|i| !MEASURED_BOOT_PCRS.contains(i)) {
        return Err(unsupported(format!("PCR {bad} is enforced, but Keylime's measured boot does not see it")));
    }
    let replayed = eventlog::replay(&log)
        .map_err(|e| unsupported(format!("the bundle's predicted event log does not replay: {e}")))?;
    for (bank, values) in &platform.vtpm {
        for (index, pcr) in values.iter().filter(|(_, p)| p.status == PcrStatus::Enforced) {
            let from_log = replayed.banks.get(bank).and_then(|b| b.get(&u32::from(*index)));
            let reset = bank.zeros();
            if from_log.map_or(&reset, |v| v) != pcr.value.as_bytes() {
                return Err(unsupported(format!(
                    "the bundle's predicted event log does not replay to its {bank} PCR {index}"
                )));
            }
        }
    }
    let mut by_pcr: BTreeMap<String, Vec<RefEvent>> = pcrs.iter().map(|i| (i.to_string(), Vec::new())).collect();
    for event in log.events.iter().filter(|e| e.is_extended()) {
        let Some(events) = u8::try_from(event.pcr).ok().and_then(|i| by_pcr.get_mut(&i.to_string())) else {
            continue;
        };
        let mut digests = BTreeMap::new();
        for d in &event.digests {
            let alg = d.alg.name().ok_or_else(|| unsupported(format!("a digest of unknown algorithm {}", d.alg)))?;
            digests.insert(alg.to_owned(), format!("0x{}", hex::encode(&d.bytes)));
        }
        let event_type = event.event_type.name().map(str::to_owned).ok_or_else(|| {
            unsupported(format!("PCR {}: {} has no name tpm2_eventlog would print", event.pcr, event.event_type))
        })?;
        events.push(RefEvent { event_type, about: about(event), digests });
    }
    Ok(Boot { name: boot_name.into(), pcrs: by_pcr })
}

/// A short note on what an event measured: its decoded data (control characters escaped), at
/// most 120 characters.
fn about(event: &eventlog::Event) -> String {
    let text = match event.decode() {
        // systemd-stub's PCR 11 pairs: the section's name, then its contents.
        eventlog::EventData::Text { text } if event.pcr == 11 && event.event_type == eventlog::EventType::EV_IPL => {
            let what = if event.is_section_name_event() { "name" } else { "contents" };
            format!("{text} ({what})")
        }
        eventlog::EventData::Text { text } => text,
        eventlog::EventData::Image(i) => i.device_path,
        other => other.to_string(),
    };
    let text: String =
        text.chars().flat_map(|c| if c.is_control() { c.escape_debug().collect() } else { vec![c] }).collect();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use eventlog::{Event, EventLog, EventType};

    use super::*;
    use crate::bundle::tests::sample;
    use crate::bundle::{HashAlg, Pcr};
    use crate::hex::Hex;

    #[test]
    fn module_and_constants_agree() {
        // The Python module is the other half of the format: it must name the same policy,
        // version and PCR sets.
        assert!(POLICY_MODULE.contains(&format!("POLICY_NAME = \"{POLICY_NAME}\"")));
        assert!(POLICY_MODULE.contains(&format!("REFSTATE_VERSION = {REFSTATE_VERSION}")));
        let relevant: Vec<String> = RELEVANT_PCRS.iter().map(u8::to_string).collect();
        assert!(POLICY_MODULE.contains(&format!("RELEVANT_PCRS = frozenset([{}])", relevant.join(", "))));
        let without: Vec<u8> = MEASURED_BOOT_PCRS.into_iter().filter(|i| *i != 11 && *i != 15).collect();
        assert_eq!(without, RELEVANT_PCRS);
    }

    /// The sample bundle's vTPM platform with a small predicted log (PCR 0, an observed PCR, is
    /// in the log too) whose replay gives its enforced PCR 4 and 9; `cmdline` varies PCR 9 and 11.
    fn with_log(cmdline: &str) -> Bundle {
        let algs = [HashAlg::Sha256];
        let text = |s: &str| s.as_bytes().to_vec();
        let events = vec![
            Event::hashing_data(0, EventType::EV_SEPARATOR, vec![0; 4], &algs),
            Event::hashing_data(4, EventType::EV_EFI_ACTION, text("Calling EFI Application from Boot Option"), &algs),
            Event::hashing_data(4, EventType::EV_SEPARATOR, vec![0; 4], &algs),
            Event::measuring(11, EventType::EV_IPL, cmdline.as_bytes(), text(".cmdline"), &algs),
            Event::measuring(9, EventType::EV_IPL, cmdline.as_bytes(), text("cmdline"), &algs),
        ];
        let log = EventLog::crypto_agile(&algs, events);
        let replayed = eventlog::replay(&log).unwrap();
        let mut b = sample();
        let p = b.platforms.get_mut("qemu-snp").unwrap();
        let bank = p.vtpm.get_mut(&HashAlg::Sha256).unwrap();
        for i in [4u8, 9] {
            let value = Hex(replayed.banks[&HashAlg::Sha256][&u32::from(i)].clone());
            bank.insert(i, Pcr { value, status: PcrStatus::Enforced });
        }
        p.eventlog = Some(Hex(eventlog::write(&log).unwrap()));
        b
    }

    #[test]
    fn tpm_policy_has_the_enforced_pcrs_and_pcr11_at_the_phase() {
        let b = with_log("console=ttyS0");
        let policy = tpm_policy(&[&b], &Options::default()).unwrap();
        assert_eq!(policy.keys().collect::<Vec<_>>(), ["11", "4", "9"], "observed PCR 0 is left out");
        assert_eq!(policy["11"], ["b4".repeat(32)], "default: the latest phase");
        let opts = Options { pcr11_phase: Some("enter-initrd".into()), ..Default::default() };
        assert_eq!(tpm_policy(&[&b], &opts).unwrap()["11"], ["b1".repeat(32)]);
        let opts = Options { pcr11_phase: Some("sysinit".into()), ..Default::default() };
        assert!(matches!(tpm_policy(&[&b], &opts), Err(ExportError::NoPhase { .. })));
    }

    #[test]
    fn refstate_lists_the_enforced_pcrs_events() {
        let b = with_log("console=ttyS0");
        let r = refstate(&[&b], &Options::default()).unwrap();
        assert_eq!(r.nodeimg_uki, REFSTATE_VERSION);
        let [boot] = &r.boots[..] else { panic!("{r:?}") };
        assert_eq!(boot.name, "debian-cvm 1.2.3 qemu-snp", "the TDX-only platform is skipped");
        assert_eq!(boot.pcrs.keys().collect::<Vec<_>>(), ["11", "4", "9"]);
        let pcr4 = &boot.pcrs["4"];
        assert_eq!(pcr4.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["EV_EFI_ACTION", "EV_SEPARATOR"]);
        assert_eq!(pcr4[0].about, "Calling EFI Application from Boot Option");
        let sha = |d: &[u8]| format!("0x{}", hex::encode(HashAlg::Sha256.hash(d)));
        assert_eq!(boot.pcrs["11"][0].digests, BTreeMap::from([("sha256".to_owned(), sha(b"console=ttyS0"))]));
        // Canonical and stable.
        let e = export(&b, &Options::default()).unwrap();
        assert_eq!(e, export(&b, &Options::default()).unwrap());
        assert_eq!((e.tpm_policy_pcrs, e.boots), (vec![4, 9, 11], 1));
        assert_eq!(serde_json::from_str::<Refstate>(&e.refstate).unwrap(), r);
    }

    #[test]
    fn two_releases_two_boots() {
        let n = with_log("console=ttyS0");
        let mut n1 = with_log("console=ttyS1");
        n1.image.version = "1.2.4".into();
        let e = export_releases(&[&n, &n1], &Options::default()).unwrap();
        let r: Refstate = serde_json::from_str(&e.refstate).unwrap();
        let names: Vec<&str> = r.boots.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["debian-cvm 1.2.3 qemu-snp", "debian-cvm 1.2.4 qemu-snp"]);
        let policy = tpm_policy(&[&n, &n1], &Options::default()).unwrap();
        assert_eq!(policy["9"].len(), 2, "{policy:?}");
        assert_eq!(policy["4"].len(), 1, "equal values once: {policy:?}");
    }

    #[test]
    fn a_log_that_contradicts_the_values_is_refused() {
        let mut b = with_log("console=ttyS0");
        let p = b.platforms.get_mut("qemu-snp").unwrap();
        p.vtpm.get_mut(&HashAlg::Sha256).unwrap().get_mut(&9).unwrap().value = Hex(vec![0x99; 32]);
        let err = export(&b, &Options::default()).unwrap_err().to_string();
        assert!(err.contains("does not replay to its sha256 PCR 9"), "{err}");
    }

    #[test]
    fn platforms_without_a_log_or_a_vtpm() {
        let b = sample();
        let err = export(&b, &Options::default()).unwrap_err().to_string();
        assert!(err.contains("no predicted event log"), "{err}");
        let opts = Options { platform: Some("qemu-tdx".into()), ..Default::default() };
        let err = export(&b, &opts).unwrap_err().to_string();
        assert!(err.contains("qemu-tdx: no vTPM PCR values"), "{err}");
    }
}
