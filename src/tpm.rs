//! Moving TPM 2.0 commands to a TPM and back: a Linux TPM character device or a swtpm socket.
//!
//! The command bytes come from [`attest::tpm`]; this module only carries them. Which TPM is
//! named with TCG TSS TCTI syntax, so the strings users already pass to tpm2-tools work here:
//! `device:PATH` (default `/dev/tpmrm0`, else `/dev/tpm0`) and `swtpm:host=H,port=P` or
//! `swtpm:path=SOCKET` (default `localhost:2321`). The swtpm framing is the TPM simulator's
//! `TPM_SEND_COMMAND` protocol that swtpm's `--server` socket speaks (the same as tpm2-tss's
//! swtpm TCTI): command word 8, locality, size, command; then size, response, and a zero word.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::eventlog::{AlgId, HashAlg};
use anyhow::{anyhow, bail, Context as _, Result};
use attest::tpm::{self as proto, PcrSelection};

/// The simulator protocol's "send a TPM command" word.
const TPM_SEND_COMMAND: u32 = 8;
/// The simulator protocol's "this connection is done" word.
const TPM_SESSION_END: u32 = 20;
/// The largest response accepted (TPM2 responses fit in 4 KiB; PCR reads in far less).
const MAX_RESPONSE: usize = 64 * 1024;
/// How long one command may take before the TPM is declared unresponsive.
const TIMEOUT: Duration = Duration::from_secs(30);
/// swtpm's default command port.
const SWTPM_PORT: u16 = 2321;

/// Where a TPM is, parsed from a TCTI string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tcti {
    /// A Linux TPM character device.
    Device(PathBuf),
    /// swtpm's command socket over TCP.
    SwtpmTcp { host: String, port: u16 },
    /// swtpm's command socket as a Unix socket.
    SwtpmUnix(PathBuf),
}

impl Tcti {
    /// Parses `device[:PATH]`, `swtpm[:host=H,port=P]` or `swtpm:path=SOCKET`.
    pub fn parse(text: &str) -> Result<Self> {
        let expected = "expected device:PATH, swtpm:host=HOST,port=PORT or swtpm:path=SOCKET";
        let (name, conf) = text.split_once(':').unwrap_or((text, ""));
        match name {
            "device" if conf.is_empty() => {
                let rm = Path::new("/dev/tpmrm0");
                Ok(Tcti::Device(if rm.exists() { rm.into() } else { "/dev/tpm0".into() }))
            }
            "device" => Ok(Tcti::Device(conf.into())),
            "swtpm" => {
                let (mut host, mut port, mut path) = ("localhost".to_owned(), SWTPM_PORT, None);
                for kv in conf.split(',').filter(|kv| !kv.is_empty()) {
                    match kv.split_once('=') {
                        Some(("host", h)) if !h.is_empty() => host = h.to_owned(),
                        Some(("port", p)) => {
                            port = p
                                .parse()
                                .map_err(|_| anyhow!("--tcti {text:?}: port {p:?} is not a port number ({expected})"))?
                        }
                        Some(("path", p)) if !p.is_empty() => path = Some(PathBuf::from(p)),
                        _ => bail!("--tcti {text:?}: unknown swtpm option {kv:?} ({expected})"),
                    }
                }
                Ok(path.map_or(Tcti::SwtpmTcp { host, port }, Tcti::SwtpmUnix))
            }
            "mssim" | "tabrmd" | "libtpms" | "cmd" | "spi-helper" | "pcap" => bail!(
                "--tcti {text:?}: nodeimg talks to TPMs itself, without a TSS, and knows two transports ({expected})"
            ),
            _ => bail!("--tcti {text:?}: unknown TCTI ({expected})"),
        }
    }
}

/// An open connection to a TPM.
enum Link {
    Device(File),
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A TPM reached through a [`Tcti`].
pub struct Tpm {
    link: Link,
    name: String,
}

impl Tpm {
    /// Connects (or opens the device). `name` is the TCTI string, for messages.
    pub fn open(tcti: &Tcti, name: &str) -> Result<Self> {
        let link = match tcti {
            Tcti::Device(path) => {
                if !path.exists() {
                    bail!("no TPM at {}: the device does not exist (--tcti names another TPM)", path.display());
                }
                let file = File::options().read(true).write(true).open(path).map_err(|e| {
                    let hint = match e.kind() {
                        std::io::ErrorKind::PermissionDenied => {
                            " (run as root or as a member of the device's group, usually tss)"
                        }
                        // /dev/tpm0 admits one user at a time (a resource manager such as
                        // tpm2-abrmd may hold it); the kernel's resource manager admits many.
                        std::io::ErrorKind::ResourceBusy => " (another program holds it: use /dev/tpmrm0)",
                        _ => "",
                    };
                    anyhow!("opening the TPM device {}: {e}{hint}", path.display())
                })?;
                Link::Device(file)
            }
            Tcti::SwtpmTcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).with_context(|| {
                    format!("connecting to the TPM at {name}: is swtpm listening on {host}:{port}?")
                })?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                stream.set_nodelay(true)?;
                Link::Tcp(stream)
            }
            Tcti::SwtpmUnix(path) => {
                let stream = UnixStream::connect(path).with_context(|| {
                    format!("connecting to the TPM at {name}: is swtpm listening on {}?", path.display())
                })?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                stream.set_write_timeout(Some(TIMEOUT))?;
                Link::Unix(stream)
            }
        };
        Ok(Tpm { link, name: name.to_owned() })
    }

    /// Sends one command and returns the TPM's response.
    pub fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let name = &self.name;
        match &mut self.link {
            Link::Device(file) => {
                file.write_all(command).with_context(|| format!("sending a command to the TPM at {name}"))?;
                let mut buf = vec![0u8; MAX_RESPONSE];
                let n = file.read(&mut buf).with_context(|| format!("reading the response of the TPM at {name}"))?;
                if n == 0 {
                    bail!("{name} answered a TPM command with nothing: is it a TPM?");
                }
                buf.truncate(n);
                Ok(buf)
            }
            Link::Tcp(s) => simulator_transact(s, command, name),
            Link::Unix(s) => simulator_transact(s, command, name),
        }
    }
}

impl Drop for Tpm {
    fn drop(&mut self) {
        // Tells swtpm the connection is over, as the TSS does; nothing to do if it has gone.
        let end = TPM_SESSION_END.to_be_bytes();
        let _ = match &mut self.link {
            Link::Device(_) => Ok(()),
            Link::Tcp(s) => s.write_all(&end),
            Link::Unix(s) => s.write_all(&end),
        };
    }
}

/// One command over the simulator protocol.
fn simulator_transact(stream: &mut (impl Read + Write), command: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut framed = Vec::with_capacity(9 + command.len());
    framed.extend_from_slice(&TPM_SEND_COMMAND.to_be_bytes());
    framed.push(0); // locality 0
    framed.extend_from_slice(&(command.len() as u32).to_be_bytes());
    framed.extend_from_slice(command);
    stream.write_all(&framed).with_context(|| format!("sending a command to the TPM at {name}"))?;
    let what = || format!("reading the response of the TPM at {name}");
    let mut word = [0u8; 4];
    stream.read_exact(&mut word).with_context(what)?;
    let size = u32::from_be_bytes(word) as usize;
    if size > MAX_RESPONSE {
        bail!("the TPM at {name} announced a {size}-byte response: not a TPM simulator socket?");
    }
    let mut response = vec![0u8; size];
    stream.read_exact(&mut response).with_context(what)?;
    stream.read_exact(&mut word).with_context(what)?;
    Ok(response)
}

/// Every PCR of every allocated bank (or of the banks in `only`) of the TPM at `tcti_name`, by
/// bank name, then index, as lowercase hex.
pub fn read_banks(tcti_name: &str, only: &[HashAlg]) -> Result<BTreeMap<String, BTreeMap<u32, String>>> {
    let tcti = Tcti::parse(tcti_name)?;
    let mut tpm = Tpm::open(&tcti, tcti_name)?;
    let response = tpm.transact(&proto::get_pcr_allocation_command())?;
    let allocated = proto::parse_pcr_allocation(&response).context("asking the TPM which PCR banks are allocated")?;
    let is_allocated = |alg: AlgId| allocated.iter().any(|s| s.alg == alg && s.pcrs != 0);
    for b in only {
        if !is_allocated(b.id()) {
            bail!("the TPM at {tcti_name} has no {b} bank allocated");
        }
    }
    let wanted: Vec<PcrSelection> = allocated
        .iter()
        .copied()
        .filter(|s| s.pcrs != 0 && (only.is_empty() || only.iter().any(|b| b.id() == s.alg)))
        .collect();
    if wanted.is_empty() {
        bail!("the TPM at {tcti_name} has no PCR bank allocated");
    }
    let values = proto::read_pcrs(&wanted, |cmd| tpm.transact(cmd)).context("reading PCRs (TPM2_PCR_Read)")?;
    Ok(values
        .into_iter()
        .map(|(alg, pcrs)| (alg.to_string(), pcrs.into_iter().map(|(i, v)| (i, hex::encode(v))).collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcti_strings_parse() {
        assert_eq!(Tcti::parse("device:/dev/tpm0").unwrap(), Tcti::Device("/dev/tpm0".into()));
        assert_eq!(
            Tcti::parse("swtpm:host=127.0.0.1,port=2400").unwrap(),
            Tcti::SwtpmTcp { host: "127.0.0.1".into(), port: 2400 }
        );
        assert_eq!(Tcti::parse("swtpm").unwrap(), Tcti::SwtpmTcp { host: "localhost".into(), port: 2321 });
        assert_eq!(Tcti::parse("swtpm:port=9").unwrap(), Tcti::SwtpmTcp { host: "localhost".into(), port: 9 });
        assert_eq!(Tcti::parse("swtpm:path=/run/s").unwrap(), Tcti::SwtpmUnix("/run/s".into()));
        for (bad, says) in [
            ("swtpm:port=99999", "is not a port number"),
            ("swtpm:colour=blue", "unknown swtpm option \"colour=blue\""),
            ("tabrmd:bus_name=com.intel.tss2.Tabrmd", "without a TSS"),
            ("carrier-pigeon:coo", "unknown TCTI"),
        ] {
            let err = Tcti::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("expected device:PATH"), "{bad}: {err}");
        }
    }
}
