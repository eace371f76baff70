//! Which files differ between two directory trees (extracted root file systems, for
//! `nodeimg repro`): presence, type, permissions, owner, symlink target and content.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{read_err, Error};

/// How one path differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difference {
    OnlyInA,
    OnlyInB,
    Type,
    Mode,
    Owner,
    Target,
    Content,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OnlyInA => "only in A",
            Self::OnlyInB => "only in B",
            Self::Type => "file type differs",
            Self::Mode => "permissions differ",
            Self::Owner => "owner differs",
            Self::Target => "symlink target differs",
            Self::Content => "content differs",
        })
    }
}

/// One differing path, relative to the tree roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    pub path: String,
    pub difference: Difference,
}

/// Compares the trees under `a` and `b`; entries sorted by path, at most one per path.
pub fn diff_trees(a: &Path, b: &Path) -> Result<Vec<DiffEntry>, Error> {
    let la = list(a)?;
    let lb = list(b)?;
    let mut out = Vec::new();
    for rel in la.union(&lb) {
        let (pa, pb) = (a.join(rel), b.join(rel));
        let difference = match (la.contains(rel), lb.contains(rel)) {
            (true, false) => Some(Difference::OnlyInA),
            (false, true) => Some(Difference::OnlyInB),
            _ => compare(&pa, &pb)?,
        };
        if let Some(difference) = difference {
            out.push(DiffEntry { path: format!("/{}", rel.display()), difference });
        }
    }
    Ok(out)
}

fn list(root: &Path) -> Result<BTreeSet<PathBuf>, Error> {
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in fs::read_dir(&dir).map_err(read_err(&dir))? {
            let entry = entry.map_err(read_err(&dir))?;
            let r = rel.join(entry.file_name());
            if entry.file_type().map_err(read_err(entry.path()))?.is_dir() {
                stack.push(r.clone());
            }
            out.insert(r);
        }
    }
    Ok(out)
}

fn compare(a: &Path, b: &Path) -> Result<Option<Difference>, Error> {
    let ma = fs::symlink_metadata(a).map_err(read_err(a))?;
    let mb = fs::symlink_metadata(b).map_err(read_err(b))?;
    if ma.file_type() != mb.file_type() {
        return Ok(Some(Difference::Type));
    }
    if ma.file_type().is_symlink() {
        let ta = fs::read_link(a).map_err(read_err(a))?;
        let tb = fs::read_link(b).map_err(read_err(b))?;
        return Ok((ta != tb).then_some(Difference::Target));
    }
    if ma.permissions().mode() != mb.permissions().mode() {
        return Ok(Some(Difference::Mode));
    }
    if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
        return Ok(Some(Difference::Owner));
    }
    if ma.file_type().is_file()
        && (ma.len() != mb.len() || fs::read(a).map_err(read_err(a))? != fs::read(b).map_err(read_err(b))?)
    {
        return Ok(Some(Difference::Content));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_of_difference() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d.join("etc/sub")).unwrap();
            fs::write(d.join("etc/same"), "x").unwrap();
        }
        fs::write(a.join("etc/content"), "1").unwrap();
        fs::write(b.join("etc/content"), "2").unwrap();
        fs::write(a.join("etc/sub/only-a"), "").unwrap();
        fs::write(b.join("only-b"), "").unwrap();
        std::os::unix::fs::symlink("x", a.join("link")).unwrap();
        std::os::unix::fs::symlink("y", b.join("link")).unwrap();
        fs::write(a.join("mode"), "").unwrap();
        fs::write(b.join("mode"), "").unwrap();
        fs::set_permissions(b.join("mode"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(a.join("type"), "").unwrap();
        fs::create_dir(b.join("type")).unwrap();
        let got: Vec<(String, Difference)> =
            diff_trees(&a, &b).unwrap().into_iter().map(|e| (e.path, e.difference)).collect();
        assert_eq!(
            got,
            [
                ("/etc/content".to_owned(), Difference::Content),
                ("/etc/sub/only-a".to_owned(), Difference::OnlyInA),
                ("/link".to_owned(), Difference::Target),
                ("/mode".to_owned(), Difference::Mode),
                ("/only-b".to_owned(), Difference::OnlyInB),
                ("/type".to_owned(), Difference::Type),
            ]
        );
        assert!(diff_trees(&a, &a).unwrap().is_empty());
    }
}
