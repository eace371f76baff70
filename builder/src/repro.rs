//! `nodeimg repro A B`: are two build outputs the same, and if not, where do they differ?
//!
//! Artefacts are compared by size and sha256 (computed here, not read from the manifests).
//! For a differing artefact the comparison goes one level down: the partitions of a disk image
//! (by GPT), the sections of a UKI (by PE section table), and the files of a partition, extracted
//! with the tools tree's `fsck.erofs --extract` (root) or `mcopy` (ESP). When `diffoscope` is
//! installed its report on the extracted trees is attached too.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::hash_file;
use crate::run::{argv, CommandError, CommandRunExt};
use crate::tools::ToolsTree;
use crate::treediff::{diff_trees, DiffEntry};
use crate::{gpt, read_err, Error, Event};

/// The comparison of one artefact.
#[derive(Debug, Clone, Serialize)]
pub struct ArtefactDiff {
    /// Path relative to the output directories (`qemu/root.raw`).
    pub path: String,
    /// sha256 in A and B (`None`: missing there).
    pub a: Option<String>,
    pub b: Option<String>,
    /// What differs inside (partitions, sections), when it was looked at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// Files that differ inside a partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DiffEntry>,
    /// diffoscope's text report, when it is installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffoscope: Option<String>,
}

impl ArtefactDiff {
    pub fn identical(&self) -> bool {
        self.a.is_some() && self.a == self.b
    }
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ReproReport {
    pub a: PathBuf,
    pub b: PathBuf,
    pub identical: bool,
    pub artefacts: Vec<ArtefactDiff>,
}

/// Compares output directories `a` and `b` (each `OUT/<image>-<version>`, with one directory per
/// platform). `tools` (mkosi's tools tree) extracts differing partitions; without it, differing
/// partitions are reported without their file lists.
pub fn compare(
    a: &Path,
    b: &Path,
    tools: Option<&ToolsTree>,
    work: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReproReport, Error> {
    let files: BTreeSet<PathBuf> = list_files(a)?.union(&list_files(b)?).cloned().collect();
    let mut artefacts = Vec::new();
    for rel in files {
        let (pa, pb) = (a.join(&rel), b.join(&rel));
        on_event(Event::Phase(format!("comparing {}", rel.display())));
        let ha = pa.is_file().then(|| hash_file(&pa)).transpose()?.map(|(_, h)| h);
        let hb = pb.is_file().then(|| hash_file(&pb)).transpose()?.map(|(_, h)| h);
        let mut d = ArtefactDiff {
            path: rel.display().to_string(),
            a: ha,
            b: hb,
            parts: Vec::new(),
            files: Vec::new(),
            diffoscope: None,
        };
        if !d.identical() && d.a.is_some() && d.b.is_some() {
            look_inside(&mut d, &pa, &pb, tools, &work.join(rel.to_string_lossy().replace('/', "_")), on_event)?;
        }
        artefacts.push(d);
    }
    Ok(ReproReport {
        a: a.to_path_buf(),
        b: b.to_path_buf(),
        identical: artefacts.iter().all(ArtefactDiff::identical),
        artefacts,
    })
}

/// Explains how two versions of one artefact differ (named `label`, e.g. `qemu/uki.efi`): the
/// partitions of a disk image, the sections of a UKI, the files of a partition — as [`compare`]
/// does for each differing artefact of two output directories.
pub fn explain(
    label: &str,
    a: &Path,
    b: &Path,
    tools: Option<&ToolsTree>,
    work: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<ArtefactDiff, Error> {
    let mut d = ArtefactDiff {
        path: label.to_owned(),
        a: Some(hash_file(a)?.1),
        b: Some(hash_file(b)?.1),
        parts: Vec::new(),
        files: Vec::new(),
        diffoscope: None,
    };
    if !d.identical() {
        look_inside(&mut d, a, b, tools, &work.join(label.replace('/', "_")), on_event)?;
    }
    Ok(d)
}

fn list_files(root: &Path) -> Result<BTreeSet<PathBuf>, Error> {
    if !root.is_dir() {
        return Err(Error::Read {
            path: root.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "not a build output directory"),
        });
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).map_err(read_err(&dir))? {
            let e = e.map_err(read_err(&dir))?;
            let r = rel.join(e.file_name());
            if e.file_type().map_err(read_err(e.path()))?.is_dir() {
                stack.push(r);
            } else {
                out.insert(r);
            }
        }
    }
    Ok(out)
}

fn look_inside(
    d: &mut ArtefactDiff,
    a: &Path,
    b: &Path,
    tools: Option<&ToolsTree>,
    work: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    let name = a.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if name.ends_with(".efi") {
        d.parts = differing_sections(a, b)?;
    } else if name == "disk.raw" {
        d.parts = differing_partitions(a, b)?;
    } else if let (Some(tools), Some(kind)) = (tools, FsKind::of(&name)) {
        let (ta, tb) = (work.join("a"), work.join("b"));
        for (img, dir) in [(a, &ta), (b, &tb)] {
            let _ = fs::remove_dir_all(dir);
            fs::create_dir_all(dir).map_err(crate::write_err(dir))?;
            extract(tools, kind, img, dir, on_event)?;
        }
        d.files = diff_trees(&ta, &tb)?;
        // diffoscope is optional: not installed, no report; exit 1 means "differs", its answer.
        let mut diffoscope = std::process::Command::new("diffoscope");
        diffoscope.arg("--text").arg("-").arg(&ta).arg(&tb);
        match diffoscope.run_capture_accepting(&[1]) {
            Ok(out) => d.diffoscope = Some(String::from_utf8_lossy(&out).into_owned()),
            Err(CommandError::Spawn { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => d.diffoscope = Some(format!("(no diffoscope report: {e})")),
        }
        let _ = fs::remove_dir_all(work);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum FsKind {
    Erofs,
    Vfat,
}

impl FsKind {
    fn of(name: &str) -> Option<Self> {
        match name {
            "root.raw" => Some(Self::Erofs),
            "esp.raw" => Some(Self::Vfat),
            _ => None,
        }
    }
}

fn extract(
    tools: &ToolsTree,
    kind: FsKind,
    img: &Path,
    dir: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    let img_dir = img.parent().unwrap_or(Path::new("/"));
    let mut cmd = match kind {
        FsKind::Erofs => {
            let mut c = tools.command("fsck.erofs", &[img_dir, dir]);
            c.arg(format!("--extract={}", dir.display())).arg("--preserve").arg("--force").arg(img);
            c
        }
        FsKind::Vfat => {
            let mut c = tools.command("mcopy", &[img_dir, dir]);
            c.arg("-s").arg("-n").arg("-m").arg("-i").arg(img).arg("::/").arg(dir);
            c
        }
    };
    on_event(Event::Command(argv(&cmd)));
    cmd.run_capture()?;
    Ok(())
}

/// Names of the PE sections (and "headers") whose bytes differ between two UKIs.
fn differing_sections(a: &Path, b: &Path) -> Result<Vec<String>, Error> {
    let (da, db) = (fs::read(a).map_err(read_err(a))?, fs::read(b).map_err(read_err(b))?);
    let pa = uki::Pe::parse(&da).map_err(|error| Error::UkiParse { path: a.to_path_buf(), error })?;
    let pb = uki::Pe::parse(&db).map_err(|error| Error::UkiParse { path: b.to_path_buf(), error })?;
    let mut out = Vec::new();
    let names: BTreeSet<&str> = pa.sections().iter().chain(pb.sections()).map(|s| s.name.as_str()).collect();
    for n in names {
        let sa = pa.section(n).map(|s| pa.section_file_bytes(s));
        let sb = pb.section(n).map(|s| pb.section_file_bytes(s));
        if sa != sb {
            out.push(format!("section {n}"));
        }
    }
    if out.is_empty() {
        out.push("headers".into());
    }
    Ok(out)
}

/// Names of the partitions (and "partition table") whose bytes differ between two disk images.
fn differing_partitions(a: &Path, b: &Path) -> Result<Vec<String>, Error> {
    use std::os::unix::fs::FileExt;
    let (ga, gb) = (gpt::read(a)?, gpt::read(b)?);
    let mut out = Vec::new();
    if ga != gb {
        out.push("partition table".into());
        return Ok(out);
    }
    let (fa, fb) = (fs::File::open(a).map_err(read_err(a))?, fs::File::open(b).map_err(read_err(b))?);
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    for p in &ga {
        let mut off = 0;
        while off < p.size {
            let n = (p.size - off).min(ba.len() as u64) as usize;
            fa.read_exact_at(&mut ba[..n], p.offset + off).map_err(read_err(a))?;
            fb.read_exact_at(&mut bb[..n], p.offset + off).map_err(read_err(b))?;
            if ba[..n] != bb[..n] {
                out.push(format!("partition {} ({})", p.index + 1, p.name));
                break;
            }
            off += n as u64;
        }
    }
    if out.is_empty() {
        out.push("bytes outside the partitions".into());
    }
    Ok(out)
}
