//! Reading PCR banks from a TPM 2.0: the two commands it takes, marshalled and checked here.
//!
//! A verifier (or a release engineer capturing a running node) needs the PCR values of a TPM,
//! every bank, every PCR. That takes exactly two commands — `TPM2_GetCapability(TPM_CAP_PCRS)`
//! to learn which banks are allocated and `TPM2_PCR_Read`, repeated because a TPM returns at
//! most eight digests per call — so nodeimg speaks them itself rather than loading a TCG
//! software stack (four shared libraries and their start-up cost in every `nodeimg` run, and a
//! library a verifier's machine would otherwise need installed). This module builds the command
//! bytes and parses the responses; the caller moves them (a `/dev/tpmrm0` character device, a
//! swtpm socket), which keeps this crate free of I/O.
//!
//! Layouts: TCG TPM 2.0 Library, Part 2 (Structures) §10.6 (`TPMS_PCR_SELECTION`), §10.9
//! (`TPML_PCR_SELECTION`, `TPML_DIGEST`), §10.10 (`TPMS_CAPABILITY_DATA`); Part 3 (Commands)
//! §30.2 (`TPM2_GetCapability`), §22.4 (`TPM2_PCR_Read`). Everything is big-endian.

use std::collections::BTreeMap;

use eventlog::AlgId;

use crate::wire::{Context, Cursor, Fault, SelectionFields, MAX_SELECT_BYTES};

/// `TPM_ST_NO_SESSIONS`: the tag of a command or response without authorization sessions.
const TPM_ST_NO_SESSIONS: u16 = 0x8001;
/// `TPM_CC_GetCapability`.
const TPM_CC_GET_CAPABILITY: u32 = 0x0000_017a;
/// `TPM_CC_PCR_Read`.
const TPM_CC_PCR_READ: u32 = 0x0000_017e;
/// `TPM_CAP_PCRS`: the capability whose data is the allocated PCR banks.
const TPM_CAP_PCRS: u32 = 0x0000_0005;
/// A response header: tag (2), responseSize (4), responseCode (4).
const HEADER_LEN: usize = 10;
/// How often a bank read is restarted when the TPM's PCR update counter moves underneath it.
const READ_ATTEMPTS: usize = 3;

/// Everything that can be wrong with a TPM's answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TpmError {
    /// The response ends before a field it must have.
    #[error(
        "the TPM's {command} response is truncated: {what} at offset {offset} needs {needed} bytes, {available} remain"
    )]
    Truncated { command: &'static str, what: &'static str, offset: usize, needed: usize, available: usize },
    /// The header's size or tag does not describe the bytes received.
    #[error("the TPM's {command} response is malformed: {detail}")]
    Malformed { command: &'static str, detail: String },
    /// The TPM refused the command.
    #[error("the TPM answered {command} with error 0x{rc:03x} ({})", response_code_meaning(*rc))]
    ResponseCode { command: &'static str, rc: u32 },
    /// A selection uses more PCR select bytes than a TPM has PCRs for.
    #[error("the TPM's {command} response selects PCRs with {size} bytes (at most {MAX_SELECT_BYTES})")]
    SelectTooLarge { command: &'static str, size: u8 },
    /// The TPM returned no value it was asked for: reading further would loop.
    #[error("the TPM returned no values for the {alg} PCRs asked for")]
    NoProgress { alg: String },
    /// PCRs kept changing while they were read, so the values would not be one consistent set.
    #[error("the TPM's PCRs changed while they were read, {READ_ATTEMPTS} times in a row")]
    Unstable,
}

/// What a TPM response code means, for the codes a PCR read meets in practice (Part 2 §6.6).
pub fn response_code_meaning(rc: u32) -> &'static str {
    match rc {
        0x100 => "TPM_RC_INITIALIZE: the TPM was not started with TPM2_Startup",
        0x101 => "TPM_RC_FAILURE: the TPM is in failure mode",
        0x143 => "TPM_RC_COMMAND_CODE: the TPM does not implement this command",
        0x901 => "TPM_RC_CANCELED",
        0x902 => "TPM_RC_TESTING: the TPM is still running its self test; try again",
        0x908 => "TPM_RC_YIELDED",
        0x922 => "TPM_RC_RETRY: the TPM is busy; try again",
        0x923 => "TPM_RC_NV_UNAVAILABLE",
        rc if rc & 0x80 != 0 => "a format-one error about a parameter, handle or session",
        _ => "see TPM 2.0 Part 2, TPM_RC",
    }
}

/// One bank's PCR selection: a `TPMS_PCR_SELECTION`, with PCR *n* at bit *n*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm.
    pub alg: AlgId,
    /// Bit *n* set: PCR *n* is selected.
    pub pcrs: u64,
    /// `sizeofSelect`: how many select bytes the TPM uses (3 for 24 PCRs).
    pub select_bytes: u8,
}

impl PcrSelection {
    /// The selected PCR indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64).filter(move |i| self.pcrs & (1 << i) != 0)
    }
}

/// What a TPM returned for a PCR read: every PCR read, by bank (its TPM_ALG_ID, known or not),
/// then index. (`crate::PcrValues` is the checked form a verifier compares.)
pub type PcrReadout = BTreeMap<AlgId, BTreeMap<u32, Vec<u8>>>;

/// `TPM2_GetCapability(TPM_CAP_PCRS, 0, 1)`: asks for the allocated banks.
pub fn get_pcr_allocation_command() -> Vec<u8> {
    let mut params = Vec::with_capacity(12);
    params.extend_from_slice(&TPM_CAP_PCRS.to_be_bytes());
    params.extend_from_slice(&0u32.to_be_bytes()); // property: ignored for TPM_CAP_PCRS
    params.extend_from_slice(&1u32.to_be_bytes()); // propertyCount
    command(TPM_CC_GET_CAPABILITY, &params)
}

/// Parses the answer to [`get_pcr_allocation_command`]: every bank the TPM knows, with the PCRs
/// allocated in it (a bank with no PCR set is known but not allocated).
pub fn parse_pcr_allocation(response: &[u8]) -> Result<Vec<PcrSelection>, TpmError> {
    const CMD: &str = "TPM2_GetCapability";
    let mut r = read_response(CMD, response)?;
    let _more_data = r.u8("moreData")?;
    let capability = r.u32("capability")?;
    if capability != TPM_CAP_PCRS {
        return Err(TpmError::Malformed {
            command: CMD,
            detail: format!("asked for TPM_CAP_PCRS, got capability 0x{capability:x}"),
        });
    }
    let selections = r.pcr_selections(&SELECTION)?;
    r.finish()?;
    Ok(selections)
}

/// `TPM2_PCR_Read` of `selection`.
pub fn pcr_read_command(selection: &[PcrSelection]) -> Vec<u8> {
    let mut params = Vec::new();
    params.extend_from_slice(&(selection.len() as u32).to_be_bytes());
    for s in selection {
        params.extend_from_slice(&s.alg.0.to_be_bytes());
        params.push(s.select_bytes);
        params.extend_from_slice(&s.pcrs.to_le_bytes()[..usize::from(s.select_bytes)]);
    }
    command(TPM_CC_PCR_READ, &params)
}

/// What one `TPM2_PCR_Read` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrReadResponse {
    /// `pcrUpdateCounter`: changes whenever any PCR is extended.
    pub update_counter: u32,
    /// The PCRs whose values follow, in that order (bank by bank, ascending index).
    pub values: Vec<(AlgId, u32, Vec<u8>)>,
}

/// Parses a `TPM2_PCR_Read` response, pairing each digest with its bank and PCR.
pub fn parse_pcr_read(response: &[u8]) -> Result<PcrReadResponse, TpmError> {
    const CMD: &str = "TPM2_PCR_Read";
    let mut r = read_response(CMD, response)?;
    let update_counter = r.u32("pcrUpdateCounter")?;
    let selection = r.pcr_selections(&SELECTION)?;
    let count = r.u32("TPML_DIGEST.count")? as usize;
    let slots: Vec<(AlgId, u32)> = selection.iter().flat_map(|s| s.indices().map(move |i| (s.alg, i))).collect();
    if count != slots.len() {
        return Err(TpmError::Malformed {
            command: CMD,
            detail: format!("{count} digests for {} selected PCRs", slots.len()),
        });
    }
    let mut values = Vec::with_capacity(count);
    for (alg, index) in slots {
        let size = usize::from(r.u16("TPM2B_DIGEST.size")?);
        values.push((alg, index, r.bytes("TPM2B_DIGEST.buffer", size)?.to_vec()));
    }
    r.finish()?;
    Ok(PcrReadResponse { update_counter, values })
}

/// Reads every PCR of `wanted` through `transact` (which sends one command and returns the
/// TPM's response), calling `TPM2_PCR_Read` until every selected PCR has a value. If the PCR
/// update counter changes between calls the values may mix two states, so the whole read starts
/// again (up to three times). Errors are the transport's, or what was wrong with an answer.
pub fn read_pcrs<E: From<TpmError>>(
    wanted: &[PcrSelection],
    mut transact: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<PcrReadout, E> {
    'attempt: for _ in 0..READ_ATTEMPTS {
        let mut left: Vec<PcrSelection> = wanted.iter().copied().filter(|s| s.pcrs != 0).collect();
        let mut values = PcrReadout::new();
        let mut counter = None;
        while !left.is_empty() {
            let response = transact(&pcr_read_command(&left))?;
            let read = parse_pcr_read(&response)?;
            if counter.is_some_and(|c| c != read.update_counter) {
                continue 'attempt;
            }
            counter = Some(read.update_counter);
            let mut progress = false;
            for (alg, index, digest) in read.values {
                if let Some(s) = left.iter_mut().find(|s| s.alg == alg && s.pcrs & (1 << index) != 0) {
                    s.pcrs &= !(1 << index);
                    progress = true;
                }
                values.entry(alg).or_default().insert(index, digest);
            }
            // A TPM that answers nothing new would be asked the same question forever.
            if !progress {
                return Err(TpmError::NoProgress { alg: left[0].alg.to_string() }.into());
            }
            left.retain(|s| s.pcrs != 0);
        }
        return Ok(values);
    }
    Err(TpmError::Unstable.into())
}

/// A command without sessions: header, then `params`.
fn command(code: u32, params: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + params.len());
    out.extend_from_slice(&TPM_ST_NO_SESSIONS.to_be_bytes());
    out.extend_from_slice(&((HEADER_LEN + params.len()) as u32).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(params);
    out
}

/// Reading a response of `command`: faults become [`TpmError`]s naming it.
#[derive(Debug, Clone, Copy)]
struct Response(&'static str);

impl Context for Response {
    type Error = TpmError;

    fn error(self, fault: Fault) -> TpmError {
        let command = self.0;
        match fault {
            Fault::Truncated { field, offset, needed, available } => {
                TpmError::Truncated { command, what: field, offset, needed, available }
            }
            Fault::Count { field, count, offset } => TpmError::Malformed {
                command,
                detail: format!("{field} {count} at offset {offset} exceeds the response"),
            },
            Fault::SelectTooLarge { size } => TpmError::SelectTooLarge { command, size },
            Fault::Malformed(detail) => TpmError::Malformed { command, detail },
            Fault::Trailing { extra, .. } => {
                TpmError::Malformed { command, detail: format!("{extra} bytes after the last field") }
            }
        }
    }
}

/// A response's `TPML_PCR_SELECTION`, as the specification names its fields.
const SELECTION: SelectionFields = SelectionFields {
    count: "TPML_PCR_SELECTION.count",
    hash: "TPMS_PCR_SELECTION.hash",
    size_of_select: "TPMS_PCR_SELECTION.sizeofSelect",
    pcr_select: "TPMS_PCR_SELECTION.pcrSelect",
};

/// Checks a response's header (tag, size, response code) and returns a cursor over its
/// parameters.
fn read_response<'a>(command: &'static str, data: &'a [u8]) -> Result<Cursor<'a, Response>, TpmError> {
    let mut r = Cursor::new(Response(command), data);
    let tag = r.u16("tag")?;
    let size = r.u32("responseSize")?;
    let rc = r.u32("responseCode")?;
    if size as usize != data.len() {
        return Err(TpmError::Malformed {
            command,
            detail: format!("its header says {size} bytes, {} arrived", data.len()),
        });
    }
    if rc != 0 {
        return Err(TpmError::ResponseCode { command, rc });
    }
    if tag != TPM_ST_NO_SESSIONS {
        return Err(TpmError::Malformed { command, detail: format!("tag 0x{tag:04x}, expected TPM_ST_NO_SESSIONS") });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response header and `params`.
    fn response(rc: u32, params: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&TPM_ST_NO_SESSIONS.to_be_bytes());
        out.extend_from_slice(&((HEADER_LEN + params.len()) as u32).to_be_bytes());
        out.extend_from_slice(&rc.to_be_bytes());
        out.extend_from_slice(params);
        out
    }

    fn selection_bytes(sel: &[(u16, [u8; 3])]) -> Vec<u8> {
        let mut out = (sel.len() as u32).to_be_bytes().to_vec();
        for (alg, bits) in sel {
            out.extend_from_slice(&alg.to_be_bytes());
            out.push(3);
            out.extend_from_slice(bits);
        }
        out
    }

    #[test]
    fn commands_have_the_spec_layout() {
        // Part 3 §30.2 and §22.4: tag, size, command code, parameters. (Whether a TPM accepts
        // them is the swtpm test's job, tests/pcrs_cli.rs.)
        assert_eq!(
            hex::encode(get_pcr_allocation_command()),
            ["8001", "00000016", "0000017a", "00000005", "00000000", "00000001"].concat()
        );
        let sel = [PcrSelection { alg: AlgId::SHA256, pcrs: 0x80_0001, select_bytes: 3 }];
        assert_eq!(
            hex::encode(pcr_read_command(&sel)),
            ["8001", "00000014", "0000017e", "00000001", "000b", "03", "010080"].concat()
        );
    }

    #[test]
    fn allocation_parses() {
        let mut params = vec![0u8];
        params.extend_from_slice(&TPM_CAP_PCRS.to_be_bytes());
        params.extend(selection_bytes(&[(0x4, [0, 0, 0]), (0xb, [0xff, 0xff, 0xff])]));
        let sel = parse_pcr_allocation(&response(0, &params)).unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0], PcrSelection { alg: AlgId::SHA1, pcrs: 0, select_bytes: 3 });
        assert_eq!(sel[1].indices().collect::<Vec<_>>(), (0..24).collect::<Vec<_>>());
    }

    #[test]
    fn read_pairs_digests_with_pcrs_and_loops_until_done() {
        let wanted = [
            PcrSelection { alg: AlgId::SHA256, pcrs: 0xff_ffff, select_bytes: 3 },
            PcrSelection { alg: AlgId::SHA1, pcrs: 0x3, select_bytes: 3 },
        ];
        // A fake TPM that, like real ones, answers at most 8 PCRs per call, in request order.
        let mut calls = 0;
        let values = read_pcrs(&wanted, |cmd: &[u8]| -> Result<Vec<u8>, TpmError> {
            calls += 1;
            let asked = read_response("test", &{
                let mut c = cmd.to_vec();
                c[6..10].copy_from_slice(&[0; 4]); // the command code sits where a response's rc does
                c
            })
            .and_then(|mut r| r.pcr_selections(&SELECTION))
            .unwrap();
            let mut budget = 8;
            let mut out_sel = Vec::new();
            let mut digests = Vec::new();
            for s in asked {
                let mut bits = 0u64;
                for i in s.indices() {
                    if budget == 0 {
                        break;
                    }
                    budget -= 1;
                    bits |= 1 << i;
                    let len = if s.alg == AlgId::SHA1 { 20 } else { 32 };
                    digests.push((len, (s.alg.0 as u8) ^ (i as u8)));
                }
                out_sel.push((s.alg.0, [bits as u8, (bits >> 8) as u8, (bits >> 16) as u8]));
            }
            let mut params = 7u32.to_be_bytes().to_vec();
            params.extend(selection_bytes(&out_sel));
            params.extend_from_slice(&(digests.len() as u32).to_be_bytes());
            for (len, byte) in digests {
                params.extend_from_slice(&(len as u16).to_be_bytes());
                params.extend(std::iter::repeat_n(byte, len));
            }
            Ok(response(0, &params))
        })
        .unwrap();
        assert_eq!(calls, 4, "26 PCRs, 8 per call");
        assert_eq!(values[&AlgId::SHA256].len(), 24);
        assert_eq!(values[&AlgId::SHA256][&23], vec![0x0b ^ 23; 32]);
        assert_eq!(values[&AlgId::SHA1][&1], vec![0x04 ^ 1; 20]);
    }

    #[test]
    fn changing_counter_restarts_then_gives_up() {
        let wanted = [PcrSelection { alg: AlgId::SHA256, pcrs: 0x3, select_bytes: 3 }];
        let mut counter = 0u32;
        let result = read_pcrs(&wanted, |_: &[u8]| -> Result<Vec<u8>, TpmError> {
            counter += 1;
            let mut params = counter.to_be_bytes().to_vec();
            params.extend(selection_bytes(&[(0xb, [1 << (counter % 2), 0, 0])]));
            params.extend_from_slice(&1u32.to_be_bytes());
            params.extend_from_slice(&32u16.to_be_bytes());
            params.extend_from_slice(&[0; 32]);
            Ok(response(0, &params))
        });
        assert_eq!(result, Err(TpmError::Unstable));
    }

    #[test]
    fn answers_to_another_question_end_the_read() {
        let wanted = [PcrSelection { alg: AlgId::SHA256, pcrs: 0x1, select_bytes: 3 }];
        let mut calls = 0;
        let result = read_pcrs(&wanted, |_: &[u8]| -> Result<Vec<u8>, TpmError> {
            calls += 1;
            // The sha1 PCR 0, whatever is asked.
            let mut params = 1u32.to_be_bytes().to_vec();
            params.extend(selection_bytes(&[(0x4, [1, 0, 0])]));
            params.extend_from_slice(&1u32.to_be_bytes());
            params.extend_from_slice(&20u16.to_be_bytes());
            params.extend_from_slice(&[0; 20]);
            Ok(response(0, &params))
        });
        assert_eq!(result, Err(TpmError::NoProgress { alg: "sha256".into() }));
        assert_eq!(calls, 1);
    }

    #[test]
    fn bad_responses_name_the_problem() {
        let cases: &[(&str, Vec<u8>, &str)] = &[
            ("empty", vec![], "truncated: tag at offset 0"),
            (
                "size lies",
                {
                    let mut r = response(0, &[0; 4]);
                    r[5] = 0x40;
                    r
                },
                "header says 64 bytes, 14 arrived",
            ),
            ("not started", response(0x100, &[]), "error 0x100 (TPM_RC_INITIALIZE"),
            ("no counter", response(0, &[0, 0]), "pcrUpdateCounter at offset 10 needs 4 bytes, 2 remain"),
            ("huge count", response(0, &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]), "count 4294967295 at offset 14"),
            (
                "digest count",
                {
                    let mut p = 1u32.to_be_bytes().to_vec();
                    p.extend(selection_bytes(&[(0xb, [3, 0, 0])]));
                    p.extend_from_slice(&1u32.to_be_bytes());
                    response(0, &p)
                },
                "1 digests for 2 selected PCRs",
            ),
            (
                "select too large",
                {
                    let mut p = 1u32.to_be_bytes().to_vec();
                    p.extend_from_slice(&[0, 0, 0, 1, 0, 0xb, 9]);
                    p.extend_from_slice(&[0; 9]);
                    response(0, &p)
                },
                "with 9 bytes",
            ),
        ];
        for (name, bytes, expected) in cases {
            let err = parse_pcr_read(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err:?} lacks {expected:?}");
        }
    }
}
