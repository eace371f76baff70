//! Image projects: a user's own image on nodeimg's base, without a copy of this repository.
//!
//! A release engineer's node image is nodeimg's minimal base (Debian trixie, systemd, the cloud
//! kernel, a dm-verity erofs root and one UKI) plus their workload. Copying `mkosi-profiles/`
//! would fork the base: every fix to it would have to be merged by hand, and nothing would say
//! which base an image was made from. A project therefore holds only what is the user's:
//!
//! ```text
//! PROJECT/
//!   nodeimg-project.json   {"base": "sha256:…"}: which base this project is built on
//!   image/                 what the image adds to the base, as an mkosi configuration directory:
//!     mkosi.conf           ImageId=, ImageVersion=, Packages=, KernelCommandLine=, …
//!     mkosi.extra/         files copied into the root (units, presets, configuration)
//!     mkosi.postinst.chroot  (optional) a script run inside the image after the packages
//!   platforms/NAME/        one per platform: mkosi.conf (command-line keys) and nodeimg.json
//!   sysext/NAME/           (optional) a system extension: files under usr/ and opt/, built into
//!                          NAME.raw on the ESP; or sysext/NAME.raw, an extension image taken as is
//!   packages.lock          every package of the image, its initrd and the tools tree, pinned
//! ```
//!
//! The base ships inside the `nodeimg` binary (the repository's `mkosi-profiles/` without its
//! lock and its test overlay, embedded at compile time), so an installed nodeimg needs no
//! checkout. Before each command, [`Project::compose`] writes the tree mkosi reads — the base's
//! `mkosi.conf`, `mkosi.repart/` and `mkosi.sandbox/`, the project's `image/` as
//! `mkosi.conf.d/50-image/` (mkosi reads it after the base's `mkosi.conf`, so lists such as
//! `Packages=` add to the base's and single values such as `ImageId=` replace them; its
//! `mkosi.extra/` and scripts are found there by mkosi's own rules), `platforms/NAME/` as
//! `mkosi.profiles/NAME/`, and the lock. The tree is content-addressed
//! (`CACHE/projects/<tree sha256>/`): the same project and base compose to the same directory,
//! whose [`crate::tree`] hash is what `build.json` and the bundle record as the profiles'
//! identity, so a rebuild years later checks that it was given the same project *and* base.
//! Empty directories of the project are not copied (git does not keep them, and a clone must
//! compose to the same tree); every directory is 0755 and every file 0644 or 0755, whatever the
//! checkout's umask.
//!
//! **System extensions.** A workload can ship as a systemd-sysext image on the ESP beside the UKI
//! (`EFI/BOOT/BOOTX64.EFI.extra.d/NAME.raw`) instead of in the root: systemd-stub measures it into
//! PCR 13 (and, as part of the initrd it hands to Linux, PCR 9), and the base copies it to
//! `/run/extensions/` in the initrd so the host merges it over `/usr` (see the base's
//! `mkosi.conf`). Updating it leaves the root, its verity hash and the UKI as they were. A tree
//! `sysext/NAME/` is composed to `sysext/NAME/` and built by a finalize script nodeimg writes
//! (`mkosi.conf.d/60-sysext/mkosi.finalize`, run by mkosi with the tools tree's `mkfs.erofs`, the
//! pinned one): owner root, every time `SOURCE_DATE_EPOCH`, no extended attributes, a UUID from
//! the name, so the same tree gives the same bytes. An image `sysext/NAME.raw` is copied there as
//! is. Both are checked first, by [`Project::open`]: the extension-release file systemd-sysext
//! requires, naming this base's `ID`/`VERSION_ID` and the `system` scope, and files only under
//! `usr/` and `opt/` (all that systemd-sysext merges).
//!
//! **Pinning the base.** `nodeimg-project.json` names the base by its content hash. A nodeimg
//! whose base differs refuses the project (exit 2) and says both hashes: a project moves to a new
//! base deliberately (edit the hash, `nodeimg lock`, rebuild, review the new reference values),
//! never because the tool was upgraded.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{read_err, write_err, Error};

/// The file that makes a directory an image project.
pub const PROJECT_FILE: &str = "nodeimg-project.json";
/// The project's additions to the base.
pub const IMAGE_DIR: &str = "image";
/// The project's platform profiles.
pub const PLATFORMS_DIR: &str = "platforms";
/// The project's system extensions.
pub const SYSEXT_DIR: &str = "sysext";
/// Where the image directory goes in the composed tree.
const IMAGE_DROPIN: &str = "mkosi.conf.d/50-image";
/// The composed tree's drop-in that puts the system extensions on the ESP.
pub const SYSEXT_DROPIN: &str = "mkosi.conf.d/60-sysext";
/// Where systemd-stub looks for extensions, credentials and add-ons: beside the UKI
/// (`EFI/BOOT/BOOTX64.EFI`), relative to the ESP's root.
pub const ESP_EXTRA_DIR: &str = "EFI/BOOT/BOOTX64.EFI.extra.d";
/// The base's `/usr/lib/os-release` `ID` and `VERSION_ID` (Debian trixie), which an extension's
/// release file must name, unless it says `ID=_any`.
pub const BASE_OS_ID: &str = "debian";
pub const BASE_OS_VERSION_ID: &str = "13";
/// The largest extension-release file read.
const MAX_RELEASE_FILE: u64 = 16 << 10;
/// The largest project file read.
const MAX_PROJECT_FILE: u64 = 64 << 10;

/// The base profile: `(path, executable, content)` of every file, sorted by path.
static BASE: &[(&str, bool, &[u8])] = include!(concat!(env!("OUT_DIR"), "/base_files.rs"));

/// The package lock of the base as this nodeimg was released with; a new project starts from it
/// (so a project that adds nothing builds from the same pins, and cached packages).
pub const BASE_LOCK: &str = include_str!("../../mkosi-profiles/packages.lock");

/// The base's files (without the platform profiles, which [`init`] copies into a project).
pub fn base_files() -> impl Iterator<Item = (&'static str, bool, &'static [u8])> {
    BASE.iter().copied().filter(|(p, _, _)| !p.starts_with("mkosi.profiles/"))
}

/// The content hash of the base (as [`crate::tree::tree_sha256`] of its files would be).
pub fn base_sha256() -> String {
    crate::tree::files_sha256(base_files())
}

/// The platforms whose profiles the base ships as templates (`qemu`, `gcp`, …), sorted.
pub fn platform_templates() -> Vec<&'static str> {
    let mut names: Vec<&str> =
        BASE.iter().filter_map(|(p, _, _)| p.strip_prefix("mkosi.profiles/")?.split('/').next()).collect();
    names.dedup();
    names
}

/// `nodeimg-project.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// The base the project is built on: `sha256:` and the base's content hash.
    pub base: String,
}

/// An image project directory, checked.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub file: ProjectFile,
    /// Its system extensions ([`Project::open`] reads and checks them once), sorted by name.
    pub sysexts: Vec<Sysext>,
}

impl Project {
    /// Whether `dir` holds a project file.
    pub fn is_project(dir: &Path) -> bool {
        dir.join(PROJECT_FILE).is_file()
    }

    /// Reads and checks the project at `dir`: its project file, that it pins this nodeimg's
    /// base, and that it has an image directory and at least one platform.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(PROJECT_FILE);
        let meta = fs::metadata(&path).map_err(|_| {
            Error::Profile(format!(
                "{}: not an image project (no {PROJECT_FILE}); create one with `nodeimg init {}`",
                dir.display(),
                dir.display()
            ))
        })?;
        if meta.len() > MAX_PROJECT_FILE {
            return Err(Error::Profile(format!("{}: larger than {MAX_PROJECT_FILE} bytes", path.display())));
        }
        let text = crate::read_small_text(&path, MAX_PROJECT_FILE).map_err(read_err(&path))?;
        let file: ProjectFile = serde_json::from_str(&text)
            .map_err(|e| Error::Profile(format!("{}: {e} (expected {{\"base\": \"sha256:…\"}})", path.display())))?;
        let ours = format!("sha256:{}", base_sha256());
        if file.base != ours {
            return Err(Error::Profile(format!(
                "{}: the project is built on base {}, but this nodeimg ({}) carries base {ours}.\n\
                 Use the nodeimg the project was made with, or move the project to this base: set \"base\" to \
                 {ours:?}, run `nodeimg lock`, build, and review the new reference values.",
                path.display(),
                file.base,
                env!("CARGO_PKG_VERSION"),
            )));
        }
        let image = dir.join(IMAGE_DIR).join("mkosi.conf");
        if !image.is_file() {
            return Err(Error::Profile(format!(
                "{}: missing; a project's image/mkosi.conf says what the image adds to the base (`nodeimg init` writes one)",
                image.display()
            )));
        }
        let platforms = dir.join(PLATFORMS_DIR);
        let has_platform = fs::read_dir(&platforms)
            .map(|rd| rd.flatten().any(|e| e.path().join("mkosi.conf").is_file()))
            .unwrap_or(false);
        if !has_platform {
            return Err(Error::Profile(format!(
                "{}: no platform profiles (platforms/NAME/mkosi.conf and nodeimg.json); `nodeimg init --platform` \
                 writes them, from these templates: {}",
                platforms.display(),
                platform_templates().join(", ")
            )));
        }
        let sysexts = read_sysexts(dir)?;
        Ok(Self { dir: dir.to_path_buf(), file, sysexts })
    }

    /// The project's package lock.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(crate::build::LOCK_FILE)
    }

    /// Writes the tree mkosi reads for this project under `cache_dir/projects/` (see the module
    /// docs) and returns its path. Composing the same project twice gives the same directory.
    pub fn compose(&self, cache_dir: &Path) -> Result<PathBuf, Error> {
        let root = cache_dir.join("projects");
        fs::create_dir_all(&root).map_err(write_err(&root))?;
        let staging = root.join(format!(".compose-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let result = self.compose_into(&staging).and_then(|()| crate::tree::tree_sha256(&staging));
        let hash = match result {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let dest = root.join(&hash);
        if dest.is_dir() {
            let _ = fs::remove_dir_all(&staging);
        } else {
            fs::rename(&staging, &dest).map_err(write_err(&dest))?;
        }
        Ok(dest)
    }

    fn compose_into(&self, dest: &Path) -> Result<(), Error> {
        for (path, exec, content) in base_files() {
            write_file(&dest.join(path), content, exec)?;
        }
        copy_tree(&self.dir.join(IMAGE_DIR), &dest.join(IMAGE_DROPIN), 0)?;
        let platforms = self.dir.join(PLATFORMS_DIR);
        let mut names: Vec<_> = fs::read_dir(&platforms).map_err(read_err(&platforms))?.flatten().collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let from = e.path();
            if from.is_dir() {
                copy_tree(&from, &dest.join("mkosi.profiles").join(e.file_name()), 0)?;
            }
        }
        let lock = self.lock_path();
        if lock.is_file() {
            let text = crate::read_small(&lock, crate::MAX_PROFILE_FILE).map_err(read_err(&lock))?;
            write_file(&dest.join(crate::build::LOCK_FILE), &text, false)?;
        }
        let mut script = String::new();
        for s in &self.sysexts {
            match &s.source {
                SysextSource::Tree(from) => {
                    copy_tree(from, &dest.join(SYSEXT_DIR).join(&s.name), 0)?;
                    script.push_str(&format!(
                        "mkfs.erofs --quiet -x-1 --all-root --hard-dereference -T\"$SOURCE_DATE_EPOCH\" -U{} \\\n    \
                         \"$dest/{name}.raw\" {SYSEXT_DIR}/{name}/\n",
                        sysext_uuid(&s.name),
                        name = s.name,
                    ));
                }
                SysextSource::Image(from) => {
                    let to = dest
                        .join(SYSEXT_DROPIN)
                        .join("mkosi.extra/efi")
                        .join(ESP_EXTRA_DIR)
                        .join(format!("{}.raw", s.name));
                    fs::create_dir_all(to.parent().expect("a parent")).map_err(write_err(&to))?;
                    fs::copy(from, &to).map_err(write_err(&to))?;
                    set_mode(&to, false)?;
                }
            }
        }
        if !script.is_empty() {
            let script = format!("{SYSEXT_FINALIZE_HEAD}{script}");
            write_file(&dest.join(SYSEXT_DROPIN).join("mkosi.finalize"), script.as_bytes(), true)?;
        }
        set_dir_modes(dest, 0)
    }
}

/// The start of the finalize script that builds the project's extension trees (one
/// `mkfs.erofs` line per tree follows). mkosi runs it in the tools tree, in the composed tree's
/// directory, with the image's root at `$BUILDROOT`, before it makes the ESP from `/efi`.
const SYSEXT_FINALIZE_HEAD: &str = "\
#!/bin/sh
# Written by nodeimg: builds each system extension tree of the project (sysext/NAME/) into an
# erofs image on the ESP beside the UKI, where systemd-stub finds it, measures it into PCR 13 and
# hands it to the initrd. The same tree gives the same bytes: owner root, every time
# $SOURCE_DATE_EPOCH, no extended attributes, a fixed UUID (from the name).
set -eu
dest=\"$BUILDROOT/efi/EFI/BOOT/BOOTX64.EFI.extra.d\"
mkdir -p \"$dest\"
";

/// A system extension of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysext {
    /// The extension's name: the image is `NAME.raw` on the ESP.
    pub name: String,
    pub source: SysextSource,
}

/// Where a system extension comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysextSource {
    /// `sysext/NAME/`: files nodeimg builds into an erofs image.
    Tree(PathBuf),
    /// `sysext/NAME.raw`: an image taken as it is.
    Image(PathBuf),
}

/// The system extensions of the project at `project` (`sysext/NAME/` trees and `sysext/NAME.raw`
/// images), sorted by name, each checked as systemd-sysext on this base would check it.
fn read_sysexts(project: &Path) -> Result<Vec<Sysext>, Error> {
    let dir = project.join(SYSEXT_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>().map_err(read_err(&dir))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(&dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e.path();
        let file_name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().map_err(read_err(&path))?;
        let sysext = if ft.is_dir() {
            check_sysext_name(&path, &file_name)?;
            check_sysext_tree(&path, &file_name)?;
            Sysext { name: file_name, source: SysextSource::Tree(path) }
        } else if ft.is_file() && file_name.ends_with(".raw") {
            let name = file_name.trim_end_matches(".raw").to_owned();
            if name.ends_with(".confext") {
                return Err(Error::Profile(format!(
                    "{}: a configuration extension; systemd 257 merges those only in the initrd, and nodeimg \
                     puts only system extensions on the ESP",
                    path.display()
                )));
            }
            check_sysext_name(&path, &name)?;
            check_sysext_image(&path)?;
            Sysext { name, source: SysextSource::Image(path) }
        } else {
            return Err(Error::Profile(format!(
                "{}: not a system extension; {SYSEXT_DIR}/ holds directories NAME/ (files under usr/ and opt/, \
                 built into NAME.raw) and images NAME.raw",
                path.display()
            )));
        };
        if out.iter().any(|s: &Sysext| s.name == sysext.name) {
            return Err(Error::Profile(format!(
                "{}: both {SYSEXT_DIR}/{n}/ and {SYSEXT_DIR}/{n}.raw; keep one",
                dir.display(),
                n = sysext.name
            )));
        }
        out.push(sysext);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The erofs UUID of extension `name`: from its name, so that rebuilding gives the same bytes.
fn sysext_uuid(name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("nodeimg sysext {name}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

/// An extension name systemd-stub and systemd-sysext both take as a file name and an image name.
fn check_sysext_name(path: &Path, name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && !name.ends_with(".raw");
    if ok {
        Ok(())
    } else {
        Err(Error::Profile(format!(
            "{}: extension name {name:?}: use letters, digits, '-', '_' and '.' (at most 64, starting with a letter \
             or digit)",
            path.display()
        )))
    }
}

/// Checks an extension tree the way systemd-sysext (257) on this base will: only `usr/` and
/// `opt/` are merged; `usr/lib/extension-release.d/extension-release.NAME` must exist and match
/// the base; an extension may not carry its own `usr/lib/os-release`.
fn check_sysext_tree(dir: &Path, name: &str) -> Result<(), Error> {
    for e in fs::read_dir(dir).map_err(read_err(dir))? {
        let e = e.map_err(read_err(dir))?;
        let top = e.file_name().to_string_lossy().into_owned();
        if !(top == "usr" || top == "opt") || !e.file_type().map_err(read_err(&e.path()))?.is_dir() {
            return Err(Error::Profile(format!(
                "{}: systemd-sysext merges only usr/ and opt/ of an extension; put files for /etc or elsewhere \
                 into image/mkosi.extra/",
                e.path().display()
            )));
        }
    }
    if dir.join("usr/lib/os-release").symlink_metadata().is_ok() {
        return Err(Error::Profile(format!(
            "{}: an extension may not carry usr/lib/os-release (systemd-sysext refuses it); its identity is \
             usr/lib/extension-release.d/extension-release.{name}",
            dir.join("usr/lib/os-release").display()
        )));
    }
    let release = dir.join("usr/lib/extension-release.d").join(format!("extension-release.{name}"));
    let example =
        format!("ID={BASE_OS_ID}\nVERSION_ID={BASE_OS_VERSION_ID}\nSYSEXT_SCOPE=system\nEXTENSION_RELOAD_MANAGER=1");
    let meta = fs::symlink_metadata(&release).map_err(|_| {
        Error::Profile(format!(
            "{}: missing; systemd-sysext merges an extension only with this file, e.g.:\n{example}",
            release.display()
        ))
    })?;
    if !meta.is_file() || meta.len() > MAX_RELEASE_FILE {
        return Err(Error::Profile(format!(
            "{}: not a regular file of at most {MAX_RELEASE_FILE} bytes",
            release.display()
        )));
    }
    let text = crate::read_small_text(&release, crate::MAX_PROFILE_FILE).map_err(read_err(&release))?;
    let fields = parse_os_release(&text);
    let get = |k: &str| fields.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let bad = |what: String| {
        Err(Error::Profile(format!(
            "{}: {what}; systemd-sysext on this base would not merge it. For example:\n{example}",
            release.display()
        )))
    };
    match get("ID") {
        None => return bad("no ID=".into()),
        Some("_any") => {}
        Some(id) if id == BASE_OS_ID => match (get("VERSION_ID"), get("SYSEXT_LEVEL")) {
            (_, Some(_)) => return bad("SYSEXT_LEVEL= is set, but the base's os-release has none".into()),
            (Some(v), None) if v == BASE_OS_VERSION_ID => {}
            (v, None) => return bad(format!("VERSION_ID={} but the base is {BASE_OS_VERSION_ID}", v.unwrap_or(""))),
        },
        Some(id) => return bad(format!("ID={id} but the base is {BASE_OS_ID} (or say ID=_any)")),
    }
    if let Some(scope) = get("SYSEXT_SCOPE") {
        if !scope.split_whitespace().any(|s| s == "system") {
            return bad(format!("SYSEXT_SCOPE={scope} leaves out \"system\", where the workload runs"));
        }
    }
    if let Some(arch) = get("ARCHITECTURE") {
        if arch != "_any" && arch != "x86-64" {
            return bad(format!("ARCHITECTURE={arch} but the base is x86-64"));
        }
    }
    Ok(())
}

/// `KEY=VALUE` lines of an os-release style file, quotes removed (os-release(5)).
fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// An extension image must be one systemd-sysext can dissect: an erofs or squashfs file system,
/// or a GPT disk image (a DDI).
fn check_sysext_image(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(path).map_err(read_err(path))?;
    let mut head = [0u8; 1028];
    let n = f.read_at(&mut head, 0).map_err(read_err(path))?;
    let head = &head[..n];
    let squashfs = head.starts_with(b"hsqs");
    let gpt = head.len() >= 520 && &head[512..520] == b"EFI PART";
    let erofs = head.len() >= 1028 && head[1024..1028] == 0xE0F5_E1E2u32.to_le_bytes();
    if squashfs || gpt || erofs {
        Ok(())
    } else {
        Err(Error::Profile(format!(
            "{}: not an erofs or squashfs file system nor a GPT disk image, which systemd-sysext can merge",
            path.display()
        )))
    }
}

/// Makes every directory under `dir` 0755 (mkosi copies directory modes into the image). The
/// composed tree puts a project's trees (each at most [`MAX_DEPTH`] deep) two levels down
/// (`mkosi.conf.d/50-image/`, `sysext/NAME/`, `mkosi.profiles/NAME/`); the bound leaves room.
fn set_dir_modes(dir: &Path, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH + 4 {
        return Err(Error::Profile(format!("{}: nested deeper than {MAX_DEPTH} directories", dir.display())));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(write_err(dir))?;
    for e in fs::read_dir(dir).map_err(read_err(dir))? {
        let e = e.map_err(read_err(dir))?;
        if e.file_type().map_err(read_err(&e.path()))?.is_dir() {
            set_dir_modes(&e.path(), depth + 1)?;
        }
    }
    Ok(())
}

/// How deep a project tree may nest.
const MAX_DEPTH: usize = 64;

/// Copies the files and symbolic links below `from` to `to`, creating directories only where a
/// file or link is (so empty directories are not copied); only the execute bit of the mode is kept.
fn copy_tree(from: &Path, to: &Path, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Profile(format!("{}: nested deeper than {MAX_DEPTH} directories", from.display())));
    }
    let mut entries: Vec<_> =
        fs::read_dir(from).map_err(read_err(from))?.collect::<Result<_, _>>().map_err(read_err(from))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let ft = e.file_type().map_err(read_err(&src))?;
        if ft.is_dir() {
            copy_tree(&src, &dst, depth + 1)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&src).map_err(read_err(&src))?;
            fs::create_dir_all(to).map_err(write_err(to))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(write_err(&dst))?;
        } else if ft.is_file() {
            // Copied, not read into memory: a payload under mkosi.extra/ may be large.
            let exec = e.metadata().map_err(read_err(&src))?.permissions().mode() & 0o111 != 0;
            fs::create_dir_all(to).map_err(write_err(to))?;
            fs::copy(&src, &dst).map_err(write_err(&dst))?;
            set_mode(&dst, exec)?;
        } else {
            return Err(Error::Profile(format!(
                "{}: neither a file, a directory nor a symbolic link",
                src.display().to_string().escape_debug()
            )));
        }
    }
    Ok(())
}

fn write_file(path: &Path, content: &[u8], exec: bool) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    fs::write(path, content).map_err(write_err(path))?;
    set_mode(path, exec)
}

/// 0755 or 0644: only the execute bit of a project's files counts ([`crate::tree`]).
fn set_mode(path: &Path, exec: bool) -> Result<(), Error> {
    let mode = if exec { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(path))
}

/// What [`init`] writes into a new project.
#[derive(Debug)]
pub struct InitOptions<'a> {
    /// The image's name (`ImageId=`): lower-case letters, digits and `-`.
    pub name: &'a str,
    /// The platforms, from [`platform_templates`].
    pub platforms: &'a [String],
}

/// Creates a project in `dir` (which must not exist, or be empty): the project file pinning this
/// nodeimg's base, `image/mkosi.conf` with the image's name and version, the platform profiles,
/// the base's lock, a README and a `.gitignore`. Writes into a sibling directory first and renames
/// it into place, so a failure leaves nothing behind.
pub fn init(dir: &Path, opts: &InitOptions<'_>) -> Result<(), Error> {
    let name = opts.name;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !name_ok {
        return Err(Error::Profile(format!(
            "image name {name:?}: use lower-case letters, digits and '-' (at most 64), as ImageId= wants"
        )));
    }
    let templates = platform_templates();
    if opts.platforms.is_empty() {
        return Err(Error::Profile(format!("no platform given; choose from {}", templates.join(", "))));
    }
    for p in opts.platforms {
        if !templates.contains(&p.as_str()) {
            return Err(Error::UnknownProfile {
                name: p.clone(),
                dir: PathBuf::from("nodeimg's base"),
                known: templates.join(", "),
            });
        }
    }
    if dir.exists() {
        let empty = fs::read_dir(dir).map_err(read_err(dir))?.next().is_none();
        if !empty {
            return Err(Error::Profile(format!(
                "{}: exists and is not empty; `nodeimg init` makes a new project in a new or empty directory",
                dir.display()
            )));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging =
        parent.join(format!(".{}.init-{}", dir.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    let result = write_project(&staging, opts);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        fs::remove_dir(dir).map_err(write_err(dir))?;
    }
    fs::rename(&staging, dir).map_err(|error| {
        let _ = fs::remove_dir_all(&staging);
        Error::Write { path: dir.to_path_buf(), error }
    })
}

fn write_project(dir: &Path, opts: &InitOptions<'_>) -> Result<(), Error> {
    let mut pf = serde_json::to_vec_pretty(&ProjectFile { base: format!("sha256:{}", base_sha256()) })
        .expect("the project file serialises");
    pf.push(b'\n');
    write_file(&dir.join(PROJECT_FILE), &pf, false)?;
    write_file(&dir.join(IMAGE_DIR).join("mkosi.conf"), image_conf(opts.name).as_bytes(), false)?;
    for p in opts.platforms {
        let prefix = format!("mkosi.profiles/{p}/");
        for (path, exec, content) in BASE.iter().filter(|(path, _, _)| path.starts_with(&prefix)) {
            let rel = &path[prefix.len()..];
            write_file(&dir.join(PLATFORMS_DIR).join(p).join(rel), content, *exec)?;
        }
    }
    write_file(&dir.join(crate::build::LOCK_FILE), BASE_LOCK.as_bytes(), false)?;
    write_file(&dir.join("README.md"), readme(opts).as_bytes(), false)?;
    write_file(&dir.join(".gitignore"), b"/out/\n*.key\n", false)?;
    Ok(())
}

fn image_conf(name: &str) -> String {
    format!(
        "\
# What this image adds to nodeimg's base (Debian trixie, systemd, the cloud kernel, a dm-verity
# erofs root and one UKI). mkosi reads this file after the base's mkosi.conf: lists such as
# Packages= add to the base's, single values such as ImageVersion= replace them.
#
# Files in mkosi.extra/ beside this file are copied into the root (units under
# usr/lib/systemd/system/, presets under usr/lib/systemd/system-preset/ to enable them). An
# executable mkosi.postinst.chroot here runs inside the image after the packages are installed.
# After changing Packages=, run `nodeimg lock` and commit packages.lock. A workload can also ship
# as a system extension on the ESP instead (../sysext/NAME/, see ../README.md).

[Output]
ImageId={name}
ImageVersion=0.1.0

[Content]
# Packages=
#         nginx-light
"
    )
}

fn readme(opts: &InitOptions<'_>) -> String {
    let platforms = opts.platforms.join(", ");
    format!(
        "\
# {name}

A node image made with nodeimg: nodeimg's minimal base
(Debian trixie, systemd, the cloud kernel, a dm-verity protected erofs root, one UKI) plus what
`image/` adds, for these platforms: {platforms}.

## Layout

- `nodeimg-project.json` — the base this project is built on, by content hash. A newer nodeimg
  with another base refuses to build it until you move the project on deliberately.
- `image/mkosi.conf` — the image's name and version and the packages it adds (`Packages=`);
  `image/mkosi.extra/` — files copied into the root; `image/mkosi.postinst.chroot` — a script
  run inside the image after the packages (all optional, mkosi's own rules).
- `sysext/NAME/` (optional) — the workload as a system extension instead of in the root: files
  under `usr/` and `opt/` plus `usr/lib/extension-release.d/extension-release.NAME` (`ID=debian`,
  `VERSION_ID=13`, `SYSEXT_SCOPE=system`, `EXTENSION_RELOAD_MANAGER=1`); nodeimg builds it into
  `NAME.raw` on the ESP beside the UKI, where the node merges it over `/usr` at boot (units it
  ships under `usr/lib/systemd/system/` start through `.wants/` links there). `sysext/NAME.raw`
  takes a ready image instead.
- `platforms/NAME/` — per platform: `mkosi.conf` (kernel command-line keys only) and
  `nodeimg.json` (attestation variant, enforced PCRs, firmware for SEV-SNP/TDX launch digests:
  `debian:PKG=VERSION:PATH`, a Debian build `nodeimg setup` fetches by pinned sha256, or a path
  relative to this project; either is recorded with its sha256 in `build.json`).
- `packages.lock` — every package of the image, its initrd and mkosi's tools tree, pinned by
  version and sha256. Run `nodeimg lock` after changing `Packages=`; commit it.

## Build, sign, release

```sh
nodeimg lock                        # after changing Packages= (resolves and pins them)
nodeimg build --all                 # out/{name}-VERSION/<platform>/ with reference-values.json
nodeimg keygen -o keys/release      # once: keys/release.key (secret) and keys/release.pub
nodeimg release --version 0.1.0 --key keys/release.key   # out/release/{name}-0.1.0/
```

## What is measured where

- The root file system is a read-only erofs image protected by dm-verity; its root hash is on
  the UKI's kernel command line (`roothash=`), so every file of `image/` is covered by the UKI.
- The UKI (systemd-stub, kernel, initrd, command line) is measured by the firmware into PCR 4
  and, section by section, by systemd-stub into PCR 11; the command line also into PCR 12 when
  it is overridden; the GPT into PCR 5; Secure Boot state into PCR 7; files the stub loads from
  `<UKI>.extra.d/`: system extensions into PCR 13, credentials into PCR 12, and both, as part of
  the initrd Linux loads, into PCR 9. Changing only `sysext/` changes only PCRs 9 and 13: the
  root, its verity hash and the UKI stay as they were.
- `nodeimg build` predicts these values per platform (and the SEV-SNP launch digest and TDX
  MRTD/RTMRs where `nodeimg.json` asks), `nodeimg release` signs them; verifiers check nodes
  with `nodeimg attest check` or the exports for Keylime, Trustee and Constellation.
",
        name = opts.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_embedded_without_lock_or_test_overlay() {
        let paths: Vec<&str> = BASE.iter().map(|(p, _, _)| *p).collect();
        assert!(paths.contains(&"mkosi.conf"), "{paths:?}");
        assert!(paths.iter().any(|p| p.starts_with("mkosi.repart/")), "{paths:?}");
        assert!(!paths.contains(&"packages.lock"));
        assert!(!paths.iter().any(|p| p.starts_with("mkosi.profiles/test")), "{paths:?}");
        assert_eq!(platform_templates(), ["aws", "azure", "gcp", "qemu"]);
        // The base's hash is the on-disk tree hash of the same files.
        let t = tempfile::tempdir().unwrap();
        for (p, exec, c) in base_files() {
            write_file(&t.path().join(p), c, exec).unwrap();
        }
        assert_eq!(base_sha256(), crate::tree::tree_sha256(t.path()).unwrap());
    }

    #[test]
    fn init_then_compose_gives_one_tree_and_empty_dirs_do_not_count() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("web");
        init(&dir, &InitOptions { name: "web", platforms: &["qemu".into(), "gcp".into()] }).unwrap();
        let p = Project::open(&dir).unwrap();
        let cache = t.path().join("cache");
        let a = p.compose(&cache).unwrap();
        assert!(a.join("mkosi.conf.d/50-image/mkosi.conf").is_file());
        assert!(a.join("mkosi.profiles/qemu/nodeimg.json").is_file());
        assert!(a.join("mkosi.profiles/gcp/mkosi.conf").is_file());
        assert!(!a.join("mkosi.profiles/aws").exists());
        assert!(a.join("packages.lock").is_file());
        fs::create_dir_all(dir.join("image/mkosi.extra/empty")).unwrap();
        assert_eq!(p.compose(&cache).unwrap(), a, "an empty directory changes nothing");
        fs::write(dir.join("image/mkosi.extra/f"), "x").unwrap();
        let b = p.compose(&cache).unwrap();
        assert_ne!(b, a);
        assert_eq!(fs::read(b.join("mkosi.conf.d/50-image/mkosi.extra/f")).unwrap(), b"x");
        // Nothing left behind but the composed trees.
        let left: Vec<_> = fs::read_dir(cache.join("projects")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    fn sysext_tree(project: &Path, name: &str, release: &str) -> PathBuf {
        let root = project.join(SYSEXT_DIR).join(name);
        write_file(&root.join("usr/share/w/index.html"), b"hi", false).unwrap();
        write_file(
            &root.join("usr/lib/extension-release.d").join(format!("extension-release.{name}")),
            release.as_bytes(),
            false,
        )
        .unwrap();
        root
    }

    const RELEASE: &str = "ID=debian\nVERSION_ID=\"13\"\nSYSEXT_SCOPE=system\nEXTENSION_RELOAD_MANAGER=1\n";

    #[test]
    fn a_sysext_tree_composes_to_a_finalize_script_and_leaves_the_cache_key_alone() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("web");
        init(&dir, &InitOptions { name: "web", platforms: &["qemu".into()] }).unwrap();
        let cache = t.path().join("cache");
        let plain = Project::open(&dir).unwrap().compose(&cache).unwrap();
        sysext_tree(&dir, "web-node", RELEASE);
        write_file(&dir.join("sysext/tools.raw"), &[0u8; 2048], false).unwrap();
        // An image is checked for a file system systemd-sysext can merge.
        let err = Project::open(&dir).unwrap_err().to_string();
        assert!(err.contains("tools.raw") && err.contains("erofs"), "{err}");
        let mut erofs = vec![0u8; 4096];
        erofs[1024..1028].copy_from_slice(&0xE0F5_E1E2u32.to_le_bytes());
        write_file(&dir.join("sysext/tools.raw"), &erofs, false).unwrap();

        let p = Project::open(&dir).unwrap();
        let names: Vec<_> = p.sysexts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tools", "web-node"]);
        let umask = unsafe_umask(0o077);
        let composed = p.compose(&cache).unwrap();
        unsafe_umask(umask);
        let script = fs::read_to_string(composed.join(SYSEXT_DROPIN).join("mkosi.finalize")).unwrap();
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
        let line = script.lines().find(|l| l.starts_with("mkfs.erofs")).unwrap();
        assert!(
            line.contains("-T\"$SOURCE_DATE_EPOCH\"") && line.contains("--all-root") && line.contains("-x-1"),
            "{line}"
        );
        assert!(script.contains(&format!("-U{}", sysext_uuid("web-node"))), "{script}");
        assert!(script.contains("\"$dest/web-node.raw\" sysext/web-node/"), "{script}");
        assert!(!script.contains("tools"), "an image is copied, not built: {script}");
        assert_eq!(
            fs::metadata(composed.join(SYSEXT_DROPIN).join("mkosi.finalize")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read(composed.join(SYSEXT_DROPIN).join("mkosi.extra/efi").join(ESP_EXTRA_DIR).join("tools.raw"))
                .unwrap(),
            erofs
        );
        assert_eq!(fs::read(composed.join("sysext/web-node/usr/share/w/index.html")).unwrap(), b"hi");
        // Directory modes do not depend on the umask the project was composed under.
        for d in ["sysext", "sysext/web-node/usr/share/w", "mkosi.conf.d/50-image"] {
            assert_eq!(fs::metadata(composed.join(d)).unwrap().permissions().mode() & 0o777, 0o755, "{d}");
        }
        // What mkosi caches does not depend on the extensions: adding one keeps the cache warm.
        assert_ne!(crate::tree::tree_sha256(&plain).unwrap(), crate::tree::tree_sha256(&composed).unwrap());
        assert_eq!(
            crate::tree::cache_relevant_sha256(&plain).unwrap(),
            crate::tree::cache_relevant_sha256(&composed).unwrap()
        );
        assert!(sysext_uuid("web-node").chars().nth(14) == Some('4'), "{}", sysext_uuid("web-node"));
    }

    /// Sets the process umask, returning the old one.
    fn unsafe_umask(mask: libc::mode_t) -> libc::mode_t {
        // SAFETY: umask(2) cannot fail; tests that compose under it are in this module only.
        #[allow(unsafe_code)]
        unsafe {
            libc::umask(mask)
        }
    }

    #[test]
    fn sysexts_systemd_sysext_would_refuse_are_refused_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("p");
        init(&dir, &InitOptions { name: "p", platforms: &["qemu".into()] }).unwrap();
        let cases: &[(&str, &str, &str)] = &[
            ("web", "VERSION_ID=13\n", "no ID="),
            ("web", "ID=fedora\nVERSION_ID=13\n", "ID=fedora"),
            ("web", "ID=debian\nVERSION_ID=12\n", "VERSION_ID=12"),
            ("web", "ID=debian\n", "VERSION_ID="),
            ("web", "ID=debian\nVERSION_ID=13\nSYSEXT_SCOPE=initrd portable\n", "SYSEXT_SCOPE"),
            ("web", "ID=debian\nVERSION_ID=13\nARCHITECTURE=arm64\n", "ARCHITECTURE"),
            ("web", "ID=debian\nVERSION_ID=13\nSYSEXT_LEVEL=1\n", "SYSEXT_LEVEL"),
            ("bad name", RELEASE, "extension name"),
        ];
        for (name, release, needle) in cases {
            let _ = fs::remove_dir_all(dir.join(SYSEXT_DIR));
            sysext_tree(&dir, name, release);
            let err = Project::open(&dir).unwrap_err().to_string();
            assert!(err.contains(needle), "{release:?}: {err}");
        }
        // ID=_any is taken as systemd-sysext takes it.
        let _ = fs::remove_dir_all(dir.join(SYSEXT_DIR));
        sysext_tree(&dir, "web", "ID=_any\n");
        Project::open(&dir).unwrap();
        // Files outside usr/ and opt/, an os-release, a missing release file, a stray file.
        let root = dir.join(SYSEXT_DIR).join("web");
        write_file(&root.join("etc/web.conf"), b"", false).unwrap();
        assert!(Project::open(&dir).unwrap_err().to_string().contains("only usr/ and opt/"));
        fs::remove_dir_all(root.join("etc")).unwrap();
        write_file(&root.join("usr/lib/os-release"), b"ID=debian\n", false).unwrap();
        assert!(Project::open(&dir).unwrap_err().to_string().contains("os-release"));
        fs::remove_file(root.join("usr/lib/os-release")).unwrap();
        fs::remove_file(root.join("usr/lib/extension-release.d/extension-release.web")).unwrap();
        let err = Project::open(&dir).unwrap_err().to_string();
        assert!(err.contains("missing") && err.contains("SYSEXT_SCOPE=system"), "{err}");
        fs::remove_dir_all(&root).unwrap();
        write_file(&dir.join("sysext/notes.txt"), b"", false).unwrap();
        assert!(Project::open(&dir).unwrap_err().to_string().contains("not a system extension"));
        fs::remove_file(dir.join("sysext/notes.txt")).unwrap();
        write_file(&dir.join("sysext/etc.confext.raw"), b"", false).unwrap();
        assert!(Project::open(&dir).unwrap_err().to_string().contains("configuration extension"));
    }

    #[test]
    fn refusals_name_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let err = Project::open(t.path()).unwrap_err().to_string();
        assert!(err.contains("nodeimg init"), "{err}");

        let dir = t.path().join("p");
        init(&dir, &InitOptions { name: "p", platforms: &["qemu".into()] }).unwrap();
        fs::write(dir.join(PROJECT_FILE), "{\"base\": \"sha256:00\"}\n").unwrap();
        let err = Project::open(&dir).unwrap_err().to_string();
        assert!(err.contains("sha256:00") && err.contains(&base_sha256()) && err.contains("nodeimg lock"), "{err}");

        // init refuses a non-empty directory, a bad name and an unknown platform, and leaves nothing.
        let err = init(&dir, &InitOptions { name: "p", platforms: &["qemu".into()] }).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        let fresh = t.path().join("fresh");
        for (name, platform) in [("Bad_Name", "qemu"), ("ok", "vmware")] {
            assert!(init(&fresh, &InitOptions { name, platforms: &[platform.into()] }).is_err());
            assert!(!fresh.exists());
        }
        let left: Vec<_> = fs::read_dir(t.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, ["p"], "no staging directory left");
    }
}
