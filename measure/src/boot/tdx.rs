//! The same boot in an Intel TDX guest without a vTPM: RTMR1 and RTMR2.
//!
//! In a TD, OVMF installs `EFI_CC_MEASUREMENT_PROTOCOL` (`OvmfPkg/Tcg/TdTcg2Dxe`) instead of a
//! TPM, and every measurement is extended into one of four runtime measurement registers and
//! logged in the CC event log (CCEL), whose index field is the CC MR index (RTMR *n* = index
//! *n*+1). Events keep their types, data and digest rules; what changes:
//!
//! * PCRs map to registers ([`tdx_mr_index`], `TdxMeasurementMapPcrToMrIndex`): PCR 1 and 7 →
//!   RTMR0, PCR 2–6 → RTMR1, PCR 8–15 → RTMR2.
//! * At ReadyToBoot the firmware logs **one** separator, into RTMR1, instead of one per PCR 0–6
//!   (`TdTcg2Dxe.c:OnReadyToBoot`, edk2-stable202502; firmware before the fix logged it into
//!   RTMR0 a second time — the "dupe separator" of go-eventlog's GCE vector).
//! * systemd-stub logs its `EV_IPL` events into the CC protocol as well as the TPM
//!   (`measure.c:tpm_log_ipl_event`), but its tagged events (UKI profile, add-ons) only into the
//!   TPM — so they never reach an RTMR.
//! * Linux measures its PCR 9 events into the CC protocol when there is no TPM: RTMR2.
//! * systemd 257 has no userspace RTMR support: no phase words (and no PCR 15) here.
//!
//! RTMR0 holds the TD HOB, the configuration firmware volume, the ACPI tables, the boot
//! variables and the Secure Boot policy: what the VMM and the platform set up, observed on a
//! running TD, not predicted from the image. RTMR1 = the boot attempt, the separator, the boot
//! disk's GPT, the UKI (and, Secure Boot off, the kernel) and the ExitBootServices actions;
//! RTMR2 = the stub's sections and parameters followed by the kernel's command line and initrd.

use super::{common, finish, firmware, image_events, stub, BootError, BootInputs, Pending, PredictedEvent};
use eventlog::{EventLog, HashAlg, LogFormat, SpecIdEvent};

/// The CC measurement register index a PCR's events go to in a TD (edk2
/// `OvmfPkg/IntelTdx/TdxMeasurementLib/TdxMeasurementCommon.c:TdxMeasurementMapPcrToMrIndex`):
/// 0 = MRTD, 1..=3 = RTMR0..=2; `None` for PCRs above 15.
pub fn tdx_mr_index(pcr: u32) -> Option<u32> {
    match pcr {
        0 => Some(0),
        1 | 7 => Some(1),
        2..=6 => Some(2),
        8..=15 => Some(3),
        _ => None,
    }
}

/// A prediction for a TD without a vTPM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxPrediction {
    /// RTMR1, when the boot disk was given (its GPT is measured into it).
    pub rtmr1: Option<Vec<u8>>,
    /// RTMR2.
    pub rtmr2: Vec<u8>,
    /// The predicted events of the RTMRs predicted, in log order; `event.pcr` is the CC MR
    /// index (2 = RTMR1, 3 = RTMR2).
    pub events: Vec<PredictedEvent>,
    /// The systemd-stub version followed.
    pub stub_version: String,
}

impl TdxPrediction {
    /// The predicted events as a CCEL (SHA-384, CC MR indices).
    pub fn eventlog(&self) -> EventLog {
        EventLog {
            format: LogFormat::Ccel,
            spec_id: Some(SpecIdEvent::for_algs(&[HashAlg::Sha384])),
            header: None,
            events: self.events.iter().map(|e| e.event.clone()).collect(),
            offsets: Vec::new(),
            trailing_padding: 0,
        }
    }
}

fn to_mr(mut p: Pending<'_>) -> Pending<'_> {
    p.pcr = tdx_mr_index(p.pcr).expect("only PCRs 4, 5, 9, 11-13 are mapped here");
    p
}

/// Predicts RTMR1 and RTMR2 of booting `inputs.uki` in a TD (no vTPM; the stub sees a
/// confidential VM whatever `inputs.confidential_vm` says). `inputs.banks` is ignored: RTMRs
/// are SHA-384.
pub fn predict_tdx(inputs: &BootInputs<'_>) -> Result<TdxPrediction, BootError> {
    let mut c = common(inputs, true)?;
    let mut ev: Vec<Pending<'_>> = Vec::new();
    let rtmr1 = inputs.disk.is_some();
    if rtmr1 {
        ev.push(to_mr(firmware::action(4, firmware::CALLING_EFI_APPLICATION)));
        ev.push(to_mr(firmware::separator(4)));
        if let Some(disk) = inputs.disk {
            ev.push(to_mr(firmware::gpt_event(disk)?));
        }
    }
    let (uki_event, kernel_event) = image_events(inputs, &c);
    if rtmr1 {
        ev.push(to_mr(uki_event));
    }
    ev.extend(std::mem::take(&mut c.run.events).into_iter().filter(|p| !p.tpm_only).map(to_mr));
    if rtmr1 && !c.enforcing {
        ev.push(to_mr(kernel_event));
    }
    ev.extend(stub::linux_events(&c.run).into_iter().map(to_mr));
    if rtmr1 {
        ev.push(to_mr(firmware::action(5, firmware::EXIT_BOOT_SERVICES_INVOCATION)));
        ev.push(to_mr(firmware::action(5, firmware::EXIT_BOOT_SERVICES_SUCCEEDED)));
    }
    let events = finish(ev, &[HashAlg::Sha384]);
    let fold = |mr: u32| {
        events.iter().filter(|e| e.event.pcr == mr).fold(HashAlg::Sha384.zeros(), |acc, e| {
            HashAlg::Sha384.extend(&acc, e.event.digest(HashAlg::Sha384.id()).expect("sha384 computed"))
        })
    };
    Ok(TdxPrediction { rtmr1: rtmr1.then(|| fold(2)), rtmr2: fold(3), stub_version: c.version, events })
}
