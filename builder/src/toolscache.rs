//! The tools cache: the programs and firmware nodeimg needs at run time, pinned by content and
//! kept outside any checkout.
//!
//! An installed `nodeimg` must not need the repository it was built from. Two things it runs or
//! reads come from Debian rather than from the host: **mkosi** (trixie's 25.3, pure Python, run
//! with the host's `python3`; everything mkosi itself runs comes from its own tools tree) and
//! **Debian's OVMF builds** (the firmware whose SEV-SNP launch digest and TDX MRTD a platform's
//! `nodeimg.json` asks for). Installing trixie's packages on a bookworm host would drag in
//! trixie's libc, and the firmware is an input of the reference values, not a host package. So
//! `nodeimg setup` fetches each `.deb` of the table [`PINS`] — package, version, architecture,
//! the `.deb`'s sha256 and its path in the archive's pool — and unpacks it into the tools cache:
//!
//! ```text
//! TOOLS/                           $NODEIMG_TOOLS_DIR, else $XDG_CACHE_HOME/nodeimg/tools,
//!                                  else ~/.cache/nodeimg/tools
//!   debs/<sha256>.deb              each pinned .deb, stored by content
//!   <package>/<version>/           its files (dpkg-deb -x), with .nodeimg-sha256 = the .deb's
//!   bin/mkosi                      the wrapper nodeimg runs: mkosi from mkosi/<version>/ on python3
//! ```
//!
//! The `.deb`s are fetched over plain HTTP from a Debian mirror (`http://deb.debian.org/debian`
//! by default, or any mirror or snapshot in the same layout). That is safe for the same reason
//! it is for apt: what arrives is checked against a sha256 nodeimg carries, and a file that does
//! not match is never kept. Every write is atomic (a `.partial` file or directory, renamed into
//! place when complete and checked), so an interrupted or failed setup leaves the cache as it was;
//! a second setup finds every package unpacked and downloads nothing. When the archive has
//! dropped a pinned version (Debian's pool keeps only the versions a suite still names), setup
//! says which file, with which sha256, it needs and where to put it, and a snapshot of the
//! archive (`--mirror http://snapshot.debian.org/archive/debian/STAMP`) serves it for ever.
//!
//! Firmware is named in `nodeimg.json` by what it is, not where a setup script left it:
//! `debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd` ([`PinnedFile`]) is that file of
//! that pinned package, found here by [`ToolsCache::resolve`].

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::mkosi::{CacheLock, Event};
use crate::run::{argv, CommandError, CommandRunExt};
use crate::{write_err, Error};

/// One Debian package nodeimg needs at run time, pinned by the sha256 of its `.deb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The binary package name.
    pub package: &'static str,
    /// Its Debian version.
    pub version: &'static str,
    /// Its architecture (`all`, or `amd64` for the test inputs).
    pub arch: &'static str,
    /// The sha256 of the `.deb`, lowercase hex.
    pub sha256: &'static str,
    /// Where the archive keeps it, relative to the mirror's root (`pool/main/…`).
    pub pool_path: &'static str,
    /// Which `nodeimg setup` fetches it: every one ([`Group::Build`]) or only
    /// `nodeimg setup --test-inputs` ([`Group::TestInputs`]).
    pub group: Group,
    /// Empty: the whole package is unpacked (`dpkg-deb -x`). Otherwise only these files are, and
    /// each is also found under its own name in the cache (a symbolic link `TOOLS/<name>`).
    pub files: &'static [Named],
}

/// Why nodeimg pins a package, which decides whether a plain `nodeimg setup` fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// What an installed nodeimg needs to build images (mkosi, the firmware it measures).
    Build,
    /// What the repository's tests read besides (a real systemd-stub and kernel, ~70 MB of
    /// `.deb`s no image build needs): `nodeimg setup --test-inputs`, which `make setup` runs.
    TestInputs,
}

/// One file of a pinned package under the name the tests read it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    /// Its path in the package, as `dpkg -L` lists it without the leading `/`.
    pub member: &'static str,
    /// Its name relative to the cache's root (`uki/vmlinuz.signed`).
    pub name: &'static str,
}

/// Debian's OVMF from bookworm (2 MiB `OVMF.fd`): the firmware of the bookworm boot fixtures.
pub const OVMF_BOOKWORM: Pin = Pin {
    package: "ovmf",
    version: "2022.11-6+deb12u2",
    arch: "all",
    sha256: "e73d3d1a8799f7f6fc16b73501d913edcdd86237556fbff30693e747e6dc262e",
    pool_path: "pool/main/e/edk2/ovmf_2022.11-6+deb12u2_all.deb",
    group: Group::Build,
    files: &[],
};

/// Debian's OVMF from trixie (4 MiB `OVMF.fd`, the generic OvmfPkgX64 build carrying both the
/// SEV and the TDVF metadata): the `qemu` platform's firmware.
pub const OVMF_TRIXIE: Pin = Pin {
    package: "ovmf",
    version: "2025.02-8+deb13u1",
    arch: "all",
    sha256: "78e0d54df11fc77406cb7a0bc9a39e5bca6d1cbe06556b91d9a73491c52decdf",
    pool_path: "pool/main/e/edk2/ovmf_2025.02-8+deb13u1_all.deb",
    group: Group::Build,
    files: &[],
};

/// mkosi 25.3 from trixie, which `nodeimg build` runs.
pub const MKOSI: Pin = Pin {
    package: "mkosi",
    version: "25.3-7",
    arch: "all",
    sha256: "ef56c81324fd47d65490e944ec4697bb3f6fb21326d0d071bfc2fb5ba5383252",
    pool_path: "pool/main/m/mkosi/mkosi_25.3-7_all.deb",
    group: Group::Build,
    files: &[],
};

/// trixie's systemd-stub (`linuxx64.efi.stub`): the stub of the uki crate's fixtures (ukify's
/// UKIs in `uki/testdata/debian.json`) and of the real-boot captures.
pub const SYSTEMD_BOOT_EFI: Pin = Pin {
    package: "systemd-boot-efi",
    version: "257.13-1~deb13u1",
    arch: "amd64",
    sha256: "390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933",
    pool_path: "pool/main/s/systemd/systemd-boot-efi_257.13-1~deb13u1_amd64.deb",
    group: Group::TestInputs,
    files: &[Named { member: "usr/lib/systemd/boot/efi/linuxx64.efi.stub", name: "uki/linuxx64.efi.stub" }],
};

/// trixie's cloud kernel as Debian signed it (an Authenticode-signed PE).
pub const LINUX_SIGNED: Pin = Pin {
    package: "linux-image-6.12.117+deb13-cloud-amd64",
    version: "6.12.117-1",
    arch: "amd64",
    sha256: "e9893e5295d0549b8852611f12a4b8b5f6cc4b8128dcc2086b9847793b904ab7",
    pool_path: "pool/main/l/linux-signed-amd64/linux-image-6.12.117+deb13-cloud-amd64_6.12.117-1_amd64.deb",
    group: Group::TestInputs,
    files: &[Named { member: "boot/vmlinuz-6.12.117+deb13-cloud-amd64", name: "uki/vmlinuz.signed" }],
};

/// The same kernel unsigned.
pub const LINUX_UNSIGNED: Pin = Pin {
    package: "linux-image-6.12.117+deb13-cloud-amd64-unsigned",
    version: "6.12.117-1",
    arch: "amd64",
    sha256: "4113a615a1f1535ed4356ca03d428c74536b00f6ccb58e049a2ffd6a1cb3f1ad",
    pool_path: "pool/main/l/linux/linux-image-6.12.117+deb13-cloud-amd64-unsigned_6.12.117-1_amd64.deb",
    group: Group::TestInputs,
    files: &[Named { member: "boot/vmlinuz-6.12.117+deb13-cloud-amd64", name: "uki/vmlinuz.unsigned" }],
};

/// Every package `nodeimg setup` installs into the tools cache: the [`Group::Build`] ones always,
/// the [`Group::TestInputs`] ones with `--test-inputs`.
///
/// Provenance: the versions and sha256s are those `make setup` pinned in
/// `scripts/setup.d/31-ovmf.sh`, `70-mkosi.sh` and `40-uki-fixtures.sh` (`UKI_DEBS`, with the
/// files and names under `tools/uki/`) until it called `nodeimg setup` (each `.deb` as
/// `apt-get download` fetched it from deb.debian.org on 2026-12-04 and `sha256sum` hashed it);
/// the pool paths are Debian's (`Filename:` of the suites' `Packages` indices, as
/// `apt-get download --print-uris` prints them: source package `edk2` for ovmf, `systemd` for
/// systemd-boot-efi, `linux-signed-amd64` and `linux` for the kernels). To move a pin: fetch the
/// new `.deb`, hash it, change it here, and regenerate what was computed from it:
/// `measure/testdata/*.tsv` (`*.gen.sh`) when OVMF moves, `uki/testdata/debian.json`
/// (`debian.gen.sh`) and `measure/testdata/boot/` when the stub or a kernel does.
pub const PINS: &[Pin] = &[OVMF_BOOKWORM, OVMF_TRIXIE, MKOSI, SYSTEMD_BOOT_EFI, LINUX_SIGNED, LINUX_UNSIGNED];

/// The mirror `nodeimg setup` fetches from by default.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The largest `.deb` setup accepts (the pinned ones are 0.1–35 MB).
pub const MAX_DEB_BYTES: u64 = 64 << 20;

/// The stamp in an unpacked package directory: the sha256 of the `.deb` it came from (the same
/// file `make setup` wrote before, so a checkout's `tools/ovmf/<version>/` is already a tools
/// cache entry).
pub const STAMP: &str = ".nodeimg-sha256";

impl Pin {
    /// The pinned package `package` at `version`, if there is one.
    pub fn find(package: &str, version: &str) -> Option<&'static Pin> {
        PINS.iter().find(|p| p.package == package && p.version == version)
    }

    /// The pins of `groups`, in the table's order.
    pub fn of(groups: &[Group]) -> impl Iterator<Item = &'static Pin> + '_ {
        PINS.iter().filter(|p| groups.contains(&p.group))
    }

    /// What `nodeimg setup` needs besides to fetch it: `""`, or `" --test-inputs"`.
    pub fn setup_flags(&self) -> &'static str {
        match self.group {
            Group::Build => "",
            Group::TestInputs => " --test-inputs",
        }
    }

    /// The `.deb`'s file name as the archive names it (`:` of an epoch as `%3a`).
    pub fn file_name(&self) -> String {
        format!("{}_{}_{}.deb", self.package, self.version.replace(':', "%3a"), self.arch)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.package, self.version)
    }
}

/// `debian:PACKAGE=VERSION:PATH`: the file `PATH` of a [`Group::Build`] package in [`PINS`] (one
/// every `nodeimg setup` fetches), as `nodeimg.json` names firmware. `PATH` is relative to the package's root (as `dpkg -L` lists it, without the
/// leading `/`), follows the last `:` (a version may hold an epoch's `:`; a path may not), and
/// has no `.` or `..` components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    pub pin: &'static Pin,
    pub path: PathBuf,
}

/// The prefix of a [`PinnedFile`].
pub const PINNED_PREFIX: &str = "debian:";

impl FromStr for PinnedFile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let form = "expected debian:PACKAGE=VERSION:PATH, e.g. debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd";
        let rest = s.strip_prefix(PINNED_PREFIX).ok_or_else(|| format!("{s:?}: {form}"))?;
        let (package, rest) = rest.split_once('=').ok_or_else(|| format!("{s:?}: {form}"))?;
        let (version, path) = rest.rsplit_once(':').ok_or_else(|| format!("{s:?}: {form}"))?;
        if package.is_empty() || version.is_empty() || path.is_empty() {
            return Err(format!("{s:?}: {form}"));
        }
        let path = PathBuf::from(path);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("{s:?}: the path in the package must be relative, without . or .. (as usr/share/…)"));
        }
        let pin = Pin::find(package, version).filter(|p| p.group == Group::Build).ok_or_else(|| {
            let known: Vec<String> = Pin::of(&[Group::Build]).map(|p| format!("{}{p}", PINNED_PREFIX)).collect();
            format!(
                "{s:?}: {package}={version} is not a package nodeimg pins for builds (pinned: {}); name one of them, or give the \
                 firmware as a path relative to the profile directory",
                known.join(", ")
            )
        })?;
        Ok(Self { pin, path })
    }
}

impl fmt::Display for PinnedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PINNED_PREFIX}{}:{}", self.pin, self.path.display())
    }
}

/// What `nodeimg setup` did with one pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupStep {
    pub package: String,
    pub version: String,
    pub sha256: String,
    /// `present` (already unpacked, nothing done), `unpacked` (from the `.deb` in the cache) or
    /// `downloaded` (fetched, checked and unpacked).
    pub action: &'static str,
    /// Bytes downloaded (0 unless `downloaded`).
    pub bytes: u64,
    /// Where its files are.
    pub dir: PathBuf,
    /// The names its files are found by ([`Pin::files`]), as paths in the cache.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

/// A tools cache directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct ToolsCache {
    root: PathBuf,
}

impl ToolsCache {
    /// The tools cache at `root` (made absolute: the mkosi wrapper names it).
    pub fn new(root: &Path) -> Self {
        Self { root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()) }
    }

    /// `$NODEIMG_TOOLS_DIR`, else `$XDG_CACHE_HOME/nodeimg/tools`, else `~/.cache/nodeimg/tools`.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("NODEIMG_TOOLS_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::user_cache_home().join("nodeimg/tools"))
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `pin`'s `.deb` is kept.
    pub fn deb(&self, pin: &Pin) -> PathBuf {
        self.root.join("debs").join(format!("{}.deb", pin.sha256))
    }

    /// Where `pin`'s files are unpacked.
    pub fn unpacked(&self, pin: &Pin) -> PathBuf {
        self.root.join(pin.package).join(pin.version)
    }

    /// True when `pin` is unpacked (its stamp names its sha256).
    pub fn is_unpacked(&self, pin: &Pin) -> bool {
        fs::read_to_string(self.unpacked(pin).join(STAMP)).is_ok_and(|s| s.trim() == pin.sha256)
    }

    /// Where `f` (a file of a pinned package) is found by its name: `TOOLS/<name>`.
    pub fn named(&self, f: &Named) -> PathBuf {
        self.root.join(f.name)
    }

    /// What the link [`ToolsCache::named`] holds: `f`'s file in `pin`'s unpacked directory,
    /// relative to the link's directory (so the cache may move).
    pub fn link_target(pin: &Pin, f: &Named) -> PathBuf {
        let up = Path::new(f.name).components().count().saturating_sub(1);
        let mut t: PathBuf = std::iter::repeat_n("..", up).collect();
        t.push(pin.package);
        t.push(pin.version);
        t.push(f.member);
        t
    }

    /// The mkosi wrapper `nodeimg setup` writes.
    pub fn mkosi(&self) -> PathBuf {
        self.root.join("bin/mkosi")
    }

    /// The file `f` names, which must be there: its package unpacked, the file a regular file.
    pub fn resolve(&self, f: &PinnedFile) -> Result<PathBuf, Error> {
        if !self.is_unpacked(f.pin) {
            return Err(Error::ToolsNotSetUp { what: format!("{f} (package {})", f.pin), dir: self.root.clone() });
        }
        let path = self.unpacked(f.pin).join(&f.path);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(Error::Profile(format!(
                "{f}: package {} has no regular file {} (look in {})",
                f.pin,
                f.path.display(),
                self.unpacked(f.pin).display()
            )));
        }
        Ok(path)
    }

    /// Fetches (from `mirror`, a Debian mirror's root URL), checks and unpacks every package of
    /// [`PINS`] in `groups` not yet unpacked, links its named files, then writes the mkosi
    /// wrapper. Holds the cache's lock (`nodeimg.lock`) meanwhile.
    pub fn setup(
        &self,
        mirror: &str,
        groups: &[Group],
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Vec<SetupStep>, Error> {
        let mirror = mirror.trim_end_matches('/');
        if !mirror.starts_with("http://") {
            return Err(Error::Profile(format!(
                "--mirror {mirror:?}: give an http:// URL (a Debian mirror's root, e.g. {DEFAULT_MIRROR}); setup \
                 speaks plain HTTP only, which is safe because every .deb is checked against its pinned sha256"
            )));
        }
        let _lock = CacheLock::acquire(&self.root, on_event)?;
        self.remove_partials();
        let mut steps = Vec::new();
        for pin in Pin::of(groups) {
            let dir = self.unpacked(pin);
            let mut step = SetupStep {
                package: pin.package.into(),
                version: pin.version.into(),
                sha256: pin.sha256.into(),
                action: "present",
                bytes: 0,
                dir: dir.clone(),
                files: pin.files.iter().map(|f| self.named(f)).collect(),
            };
            if !self.is_unpacked(pin) {
                let deb = self.deb(pin);
                if deb.is_file() && crate::debs::sha256_file(&deb)? == pin.sha256 {
                    step.action = "unpacked";
                } else {
                    on_event(Event::Stage(format!("downloading {} ({})", pin, pin.file_name())));
                    step.bytes = self.download(pin, mirror)?;
                    step.action = "downloaded";
                }
                on_event(Event::Stage(format!("unpacking {pin} into {}", dir.display())));
                self.unpack(pin, on_event)?;
            }
            for f in pin.files {
                self.link(pin, f, on_event)?;
            }
            steps.push(step);
        }
        self.write_mkosi_wrapper()?;
        Ok(steps)
    }

    /// Removes what an interrupted setup left (`.…partial` files and directories); called with
    /// the lock held, so no other setup is writing them.
    fn remove_partials(&self) {
        let named = PINS.iter().flat_map(|p| p.files).filter_map(|f| Path::new(f.name).parent());
        let dirs = ["debs", "bin"]
            .into_iter()
            .chain(PINS.iter().map(|p| p.package))
            .map(|d| self.root.join(d))
            .chain(named.map(|d| self.root.join(d)));
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".partial") {
                    let p = e.path();
                    let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                }
            }
        }
    }

    /// Downloads `pin` from `mirror` into `debs/<sha256>.deb`, checking size and sha256 on the
    /// way; returns the bytes read. Nothing stays behind on failure.
    fn download(&self, pin: &'static Pin, mirror: &str) -> Result<u64, Error> {
        let debs = self.root.join("debs");
        fs::create_dir_all(&debs).map_err(write_err(&debs))?;
        let dest = self.deb(pin);
        let partial = debs.join(format!(".{}.deb.{}.partial", pin.sha256, std::process::id()));
        let url = format!("{mirror}/{}", pin.pool_path);
        let fetch_err = |reason: String| Error::ToolFetch { url: url.clone(), reason, pin, cached: dest.clone() };
        let result = fetch(&url, &partial, MAX_DEB_BYTES, &Pace::DOWNLOAD);
        let (bytes, got) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(match e {
                    FetchError::Write(error) => Error::Write { path: partial, error },
                    FetchError::Http(reason) => fetch_err(reason),
                });
            }
        };
        if got != pin.sha256 {
            let _ = fs::remove_file(&partial);
            return Err(Error::ToolDigest { url, got, pin, cached: dest });
        }
        fs::rename(&partial, &dest).map_err(write_err(&dest))?;
        sync_dir(&debs);
        Ok(bytes)
    }

    /// Unpacks `debs/<sha256>.deb` (checked by the caller) into `<package>/<version>/`: into a
    /// `.partial` directory first, stamped, then renamed over whatever was there.
    fn unpack(&self, pin: &Pin, on_event: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let dest = self.unpacked(pin);
        let parent = dest.parent().expect("<tools>/<package>/<version> has a parent");
        fs::create_dir_all(parent).map_err(write_err(parent))?;
        let partial = parent.join(format!(".{}.{}.partial", pin.version, std::process::id()));
        let _ = fs::remove_dir_all(&partial);
        fs::create_dir(&partial).map_err(write_err(&partial))?;
        let result = (|| {
            if pin.files.is_empty() {
                let mut cmd = std::process::Command::new("dpkg-deb");
                cmd.arg("-x").arg(self.deb(pin)).arg(&partial);
                on_event(Event::Command(argv(&cmd)));
                cmd.run_capture().map_err(missing_dpkg)?;
            } else {
                extract_members(&self.deb(pin), &partial, pin.files, on_event)?;
            }
            let stamp = partial.join(STAMP);
            fs::write(&stamp, format!("{}\n", pin.sha256)).map_err(write_err(&stamp))?;
            // A stale or half-removed directory of an older setup goes first.
            if fs::symlink_metadata(&dest).is_ok() {
                fs::remove_dir_all(&dest).map_err(write_err(&dest))?;
            }
            fs::rename(&partial, &dest).map_err(write_err(&dest))?;
            sync_dir(parent);
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&partial);
        }
        result
    }

    /// Makes `TOOLS/<name>` a link to `f`'s file in `pin`'s unpacked directory, atomically,
    /// unless it already is one (whatever an older setup left there, a copy included, is
    /// replaced).
    fn link(&self, pin: &Pin, f: &Named, on_event: &mut dyn FnMut(Event)) -> Result<(), Error> {
        let path = self.named(f);
        let target = Self::link_target(pin, f);
        if fs::read_link(&path).is_ok_and(|t| t == target) {
            return Ok(());
        }
        on_event(Event::Stage(format!("linking {} to {}", f.name, target.display())));
        let parent = path.parent().expect("TOOLS/<name> has a parent");
        fs::create_dir_all(parent).map_err(write_err(parent))?;
        let file_name = path.file_name().expect("a name has a last component").to_string_lossy();
        let tmp = parent.join(format!(".{file_name}.{}.partial", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let result = std::os::unix::fs::symlink(&target, &tmp).and_then(|()| fs::rename(&tmp, &path));
        if let Err(error) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Write { path, error });
        }
        sync_dir(parent);
        Ok(())
    }

    /// The wrapper that runs the pinned mkosi with the host's python3.
    ///
    /// The path it names is the unpacked mkosi's real path, symbolic links resolved: a tools
    /// directory reached through a link (a checkout's `tools/` linked to a shared one) gets a
    /// wrapper that still works when that link is gone.
    pub fn mkosi_wrapper_text(&self) -> String {
        let unpacked = self.unpacked(&MKOSI);
        let unpacked = fs::canonicalize(&unpacked).unwrap_or(unpacked);
        let site = unpacked.join("usr/lib/python3/dist-packages");
        let quoted = format!("'{}'", site.display().to_string().replace('\'', r"'\''"));
        format!(
            "#!/bin/sh\n# Written by `nodeimg setup`: mkosi {} from {} on the host's python3.\n\
             PYTHONPATH={quoted}${{PYTHONPATH:+:$PYTHONPATH}} exec /usr/bin/python3 -m mkosi \"$@\"\n",
            MKOSI.version,
            unpacked.display()
        )
    }

    /// Writes `bin/mkosi` (atomically, mode 0755) unless it already says the same.
    fn write_mkosi_wrapper(&self) -> Result<(), Error> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.mkosi();
        let text = self.mkosi_wrapper_text();
        let current = fs::read_to_string(&path).ok();
        let executable = fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111);
        if current.as_deref() == Some(text.as_str()) && executable {
            return Ok(());
        }
        let bin = self.root.join("bin");
        fs::create_dir_all(&bin).map_err(write_err(&bin))?;
        let tmp = bin.join(format!(".mkosi.{}.partial", std::process::id()));
        let result = (|| {
            fs::write(&tmp, &text)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
            fs::rename(&tmp, &path)
        })();
        if let Err(error) = result {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Write { path, error });
        }
        Ok(())
    }
}

/// A `dpkg-deb` or `tar` that is not there says which package to install.
fn missing_dpkg(e: CommandError) -> Error {
    match e {
        CommandError::Spawn { error, argv } if error.kind() == io::ErrorKind::NotFound => {
            let (program, package) = if argv.starts_with("tar") { ("tar", "tar") } else { ("dpkg-deb", "dpkg") };
            Error::ToolMissing { program, package, why: "to unpack the pinned .debs".into() }
        }
        e => Error::Command(e),
    }
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x -C DEST ./MEMBER…`: only `files` of the package (a
/// kernel's `.deb` unpacks to ~35 MB, mostly modules no test reads), each checked to be a regular file.
fn extract_members(deb: &Path, dest: &Path, files: &[Named], on_event: &mut dyn FnMut(Event)) -> Result<(), Error> {
    use std::process::{Command, Stdio};
    let mut dpkg = Command::new("dpkg-deb");
    dpkg.arg("--fsys-tarfile").arg(deb);
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("--no-same-owner").arg("-C").arg(dest).arg("-f").arg("-").arg("--");
    tar.args(files.iter().map(|f| format!("./{}", f.member)));
    on_event(Event::Command([argv(&dpkg), vec!["|".into()], argv(&tar)].concat()));
    let spawn = |cmd: &mut Command| {
        let argv = crate::run::argv_string(cmd);
        cmd.spawn().map_err(|error| missing_dpkg(CommandError::Spawn { argv, error }))
    };
    let mut producer = spawn(dpkg.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    let pipe = producer.stdout.take().expect("piped stdout");
    let consumer = spawn(tar.stdin(pipe).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let consumer = match consumer {
        Ok(c) => c,
        Err(e) => {
            let _ = producer.kill();
            let _ = producer.wait();
            return Err(e);
        }
    };
    // tar first: it reads the pipe to its end, so dpkg-deb can finish; dpkg-deb's stderr is a
    // line or two at most.
    let tar_out = consumer.wait_with_output();
    let dpkg_out = producer.wait_with_output();
    let failed = |cmd: &Command, out: io::Result<std::process::Output>| -> Result<(), Error> {
        let argv = crate::run::argv_string(cmd);
        let out = out.map_err(|error| Error::Command(CommandError::Io { argv: argv.clone(), error }))?;
        if out.status.success() {
            return Ok(());
        }
        let tail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(Error::Command(CommandError::Failed { argv, status: out.status.to_string(), tail }))
    };
    failed(&tar, tar_out)?;
    failed(&dpkg, dpkg_out)?;
    for f in files {
        let path = dest.join(f.member);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(Error::Profile(format!(
                "{}: {} is not a regular file in the package",
                deb.display(),
                f.member
            )));
        }
    }
    Ok(())
}

/// Best effort: the rename is durable once the directory is synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

enum FetchError {
    /// The server or the network (said to the user with the fix).
    Http(String),
    /// Our own disk.
    Write(io::Error),
}

/// How slow a download may be: after `grace`, at least `min_rate` bytes a second on average. A
/// server that sends a byte now and then never trips the per-read timeout, and would otherwise
/// keep `setup` waiting for days.
struct Pace {
    grace: Duration,
    min_rate: u64,
}

impl Pace {
    /// 60 s, then 16 KiB/s: the largest pinned `.deb` in under an hour on the slowest link.
    const DOWNLOAD: Pace = Pace { grace: Duration::from_secs(60), min_rate: 16 << 10 };
}

/// GETs `url` into a new file `dest`, at most `limit` bytes, at least at `pace`; returns its size
/// and sha256.
fn fetch(url: &str, dest: &Path, limit: u64, pace: &Pace) -> Result<(u64, String), FetchError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .max_redirects(5)
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| {
        FetchError::Http(match e {
            ureq::Error::StatusCode(404) => {
                "HTTP 404 (not found): the mirror does not have this version (Debian's pool drops a version once no \
                 suite names it)"
                    .into()
            }
            ureq::Error::StatusCode(c) => format!("HTTP {c}"),
            e => e.to_string(),
        })
    })?;
    if let Some(n) = response.body().content_length().filter(|n| *n > limit) {
        return Err(FetchError::Http(format!("the server announces {n} bytes, more than the {limit} a .deb may have")));
    }
    let mut reader = response.into_body().into_with_config().limit(limit).reader();
    let mut out = File::options().write(true).create_new(true).open(dest).map_err(FetchError::Write)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let start = std::time::Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed > pace.grace && (total as f64) < elapsed.as_secs_f64() * pace.min_rate as f64 {
            return Err(FetchError::Http(format!(
                "the server sent {total} bytes in {} s, less than {} KiB/s: giving up",
                elapsed.as_secs(),
                pace.min_rate >> 10
            )));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FetchError::Http(format!("reading the response: {e}"))),
        };
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(FetchError::Write)?;
        total += n as u64;
    }
    out.sync_all().map_err(FetchError::Write)?;
    Ok((total, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 that announces `len` bytes and sends one every 50 ms.
    fn dripping_server(len: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x.deb", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = [0u8; 4096];
            let _ = conn.read(&mut req);
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            for _ in 0..len {
                if conn.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        url
    }

    #[test]
    fn a_download_slower_than_its_pace_is_given_up() {
        let t = tempfile::tempdir().unwrap();
        let pace = Pace { grace: Duration::from_millis(500), min_rate: 1 << 10 };
        let started = std::time::Instant::now();
        let Err(FetchError::Http(why)) = fetch(&dripping_server(1000), &t.path().join("x"), 1 << 20, &pace) else {
            panic!("a dripping download must fail");
        };
        assert!(why.contains("less than 1 KiB/s"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, p) in PINS.iter().enumerate() {
            assert!(p.sha256.len() == 64 && p.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            // Debian's pool: pool/COMPONENT/PREFIX/SOURCE/FILE, PREFIX the source's first letter.
            let parts: Vec<&str> = p.pool_path.split('/').collect();
            assert_eq!(parts.len(), 5, "{p:?}");
            assert_eq!((parts[0], parts[1]), ("pool", "main"), "{p:?}");
            assert!(parts[3].starts_with(parts[2]), "{p:?}");
            assert_eq!(parts[4], p.file_name(), "{p:?}");
            assert!(!PINS[..i].iter().any(|q| q.package == p.package && q.version == p.version), "{p:?} twice");
            assert_eq!(Pin::find(p.package, p.version), Some(p));
            // Named files: relative paths without . or .., in a directory of their own (not a
            // package's, debs/ or bin/), each name once.
            let plain = |s: &str| Path::new(s).components().all(|c| matches!(c, Component::Normal(_)));
            for f in p.files {
                assert!(plain(f.member) && plain(f.name), "{f:?}");
                let top = f.name.split('/').next().unwrap();
                assert!(f.name.contains('/') && !["debs", "bin"].contains(&top), "{f:?}");
                assert!(!PINS.iter().any(|q| q.package == top), "{f:?}");
            }
            assert!(!PINS[..i].iter().flat_map(|q| q.files).any(|g| p.files.iter().any(|f| f.name == g.name)));
        }
        assert_eq!(Pin::find("ovmf", "0"), None);
        assert!(PINS.contains(&MKOSI));
        // A plain `nodeimg setup` fetches what builds need, and only that.
        let build: Vec<&str> = Pin::of(&[Group::Build]).map(|p| p.package).collect();
        assert_eq!(build, ["ovmf", "ovmf", "mkosi"]);
        assert!(Pin::of(&[Group::Build]).all(|p| p.files.is_empty()));
        assert_eq!(Pin::of(&[Group::Build, Group::TestInputs]).count(), PINS.len());
    }

    /// The test inputs are the packages, files and names `scripts/setup.d/40-uki-fixtures.sh`
    /// pinned (`UKI_DEBS`) before `nodeimg setup --test-inputs` fetched them, and the readers'
    /// `tools/uki/NAME` are links into the unpacked packages.
    #[test]
    fn the_test_inputs_are_the_uki_fixtures() {
        let names: Vec<(&str, &str, &str, &str)> = Pin::of(&[Group::TestInputs])
            .flat_map(|p| p.files.iter().map(move |f| (p.package, p.sha256, f.member, f.name)))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "systemd-boot-efi",
                    "390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933",
                    "usr/lib/systemd/boot/efi/linuxx64.efi.stub",
                    "uki/linuxx64.efi.stub"
                ),
                (
                    "linux-image-6.12.117+deb13-cloud-amd64",
                    "e9893e5295d0549b8852611f12a4b8b5f6cc4b8128dcc2086b9847793b904ab7",
                    "boot/vmlinuz-6.12.117+deb13-cloud-amd64",
                    "uki/vmlinuz.signed"
                ),
                (
                    "linux-image-6.12.117+deb13-cloud-amd64-unsigned",
                    "4113a615a1f1535ed4356ca03d428c74536b00f6ccb58e049a2ffd6a1cb3f1ad",
                    "boot/vmlinuz-6.12.117+deb13-cloud-amd64",
                    "uki/vmlinuz.unsigned"
                ),
            ]
        );
        assert_eq!(
            ToolsCache::link_target(&LINUX_SIGNED, &LINUX_SIGNED.files[0]),
            Path::new("../linux-image-6.12.117+deb13-cloud-amd64/6.12.117-1/boot/vmlinuz-6.12.117+deb13-cloud-amd64")
        );
        assert_eq!(SYSTEMD_BOOT_EFI.setup_flags(), " --test-inputs");
        assert_eq!(OVMF_TRIXIE.setup_flags(), "");
    }

    /// The pins agree with what `scripts/setup.d` pinned before (the shell no longer keeps its
    /// own copy: `make setup` runs `nodeimg setup`), and with the repository's nodeimg.json.
    #[test]
    fn the_table_pins_what_the_repository_names() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let qemu = fs::read_to_string(root.join("mkosi-profiles/mkosi.profiles/qemu/nodeimg.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&qemu).unwrap();
        for field in ["snp", "tdx"] {
            let f: PinnedFile = v[field]["firmware"].as_str().unwrap().parse().unwrap();
            assert_eq!(f.pin, &OVMF_TRIXIE, "{field}");
            assert_eq!(f.path, Path::new("usr/share/ovmf/OVMF.fd"));
        }
    }

    #[test]
    fn pinned_files_parse_and_print() {
        let f: PinnedFile = "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd".parse().unwrap();
        assert_eq!((f.pin, f.path.as_path()), (&OVMF_TRIXIE, Path::new("usr/share/ovmf/OVMF.fd")));
        assert_eq!(f.to_string(), "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd");
        let cases = [
            ("ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd", "expected debian:PACKAGE=VERSION:PATH"),
            ("debian:ovmf:usr/share/ovmf/OVMF.fd", "expected debian:PACKAGE=VERSION:PATH"),
            ("debian:ovmf=2025.02-8+deb13u1", "expected debian:PACKAGE=VERSION:PATH"),
            ("debian:ovmf=2025.02-8+deb13u1:", "expected debian:PACKAGE=VERSION:PATH"),
            ("debian:ovmf=2025.02-8+deb13u1:/usr/share/ovmf/OVMF.fd", "must be relative"),
            ("debian:ovmf=2025.02-8+deb13u1:usr/../../etc/passwd", "must be relative"),
            ("debian:ovmf=2024.11-1:usr/share/ovmf/OVMF.fd", "ovmf=2024.11-1 is not a package nodeimg pins"),
            ("debian:edk2=2025.02-8+deb13u1:OVMF.fd", "debian:ovmf=2025.02-8+deb13u1, debian:mkosi=25.3-7)"),
            // A test input is not something a build may name: a plain setup does not fetch it.
            (
                "debian:systemd-boot-efi=257.13-1~deb13u1:usr/lib/systemd/boot/efi/linuxx64.efi.stub",
                "systemd-boot-efi=257.13-1~deb13u1 is not a package nodeimg pins for builds",
            ),
        ];
        for (s, want) in cases {
            let err = s.parse::<PinnedFile>().unwrap_err();
            assert!(err.contains(want), "{s}: {err}");
        }
    }

    #[test]
    fn paths_in_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let c = ToolsCache::new(t.path());
        assert_eq!(c.deb(&MKOSI), t.path().join(format!("debs/{}.deb", MKOSI.sha256)));
        assert_eq!(c.unpacked(&OVMF_TRIXIE), t.path().join("ovmf/2025.02-8+deb13u1"));
        assert_eq!(c.mkosi(), t.path().join("bin/mkosi"));
        let f: PinnedFile = "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.fd".parse().unwrap();
        let err = c.resolve(&f).unwrap_err().to_string();
        assert!(err.contains("ovmf=2025.02-8+deb13u1") && err.contains("run `nodeimg setup --tools-dir"), "{err}");

        // Unpacked with another .deb's stamp: not this pin.
        let d = c.unpacked(&OVMF_TRIXIE);
        fs::create_dir_all(d.join("usr/share/ovmf")).unwrap();
        fs::write(d.join("usr/share/ovmf/OVMF.fd"), b"fw").unwrap();
        fs::write(d.join(STAMP), format!("{}\n", OVMF_BOOKWORM.sha256)).unwrap();
        assert!(!c.is_unpacked(&OVMF_TRIXIE));
        assert!(c.resolve(&f).is_err());
        fs::write(d.join(STAMP), format!("{}\n", OVMF_TRIXIE.sha256)).unwrap();
        assert_eq!(c.resolve(&f).unwrap(), d.join("usr/share/ovmf/OVMF.fd"));
        let g: PinnedFile = "debian:ovmf=2025.02-8+deb13u1:usr/share/ovmf/OVMF.missing".parse().unwrap();
        let err = c.resolve(&g).unwrap_err().to_string();
        assert!(err.contains("has no regular file usr/share/ovmf/OVMF.missing"), "{err}");
    }

    #[test]
    fn the_wrapper_quotes_the_directory() {
        let c = ToolsCache::new(Path::new("/tmp/it's here"));
        let text = c.mkosi_wrapper_text();
        assert!(
            text.contains(r"PYTHONPATH='/tmp/it'\''s here/mkosi/25.3-7/usr/lib/python3/dist-packages'${PYTHONPATH:+"),
            "{text}"
        );
        // Through a link to the tools directory, the wrapper names the real path.
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        fs::create_dir_all(real.join("mkosi/25.3-7")).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        let text = ToolsCache::new(&t.path().join("link")).mkosi_wrapper_text();
        let real = fs::canonicalize(&real).unwrap();
        assert!(text.contains(&format!("'{}/mkosi/25.3-7/usr/lib/python3/dist-packages'", real.display())), "{text}");
    }

    #[test]
    fn setup_refuses_a_mirror_it_cannot_speak_to() {
        let t = tempfile::tempdir().unwrap();
        let err =
            ToolsCache::new(t.path()).setup("https://deb.debian.org/debian", &[Group::Build], &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("give an http:// URL"), "{err}");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
