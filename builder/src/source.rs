//! Where a build's Debian packages come from, for the image and for mkosi's tools tree alike.
//!
//! The live archive keeps one version of each package per suite; at the next point release the
//! versions a lock pins are gone from it. A build that must still work years later therefore
//! resolves from a source that never moves:
//!
//! * a **snapshot** of the archive (`<mirror>/archive/debian/<STAMP>/`, the layout of Debian's
//!   snapshot service: the archive as it was at that second, forever), for the image and the
//!   tools tree; or
//! * a **package archive**: a directory holding exactly the lock's `.deb`s (what
//!   `nodeimg release --with-packages` publishes beside a release), which needs no network at all.
//!
//! The live archive (`--mirror`, default `http://deb.debian.org`) remains possible, and a release
//! built from it says so in its provenance. Whatever the source, every `.deb` must have the
//! sha256 the lock records, so the source decides only *whether* a build can find its packages,
//! never *which bytes* it gets.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

/// The live archive's default mirror (the host whose `/debian` and `/debian-security` apt uses).
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org";

/// Debian's snapshot service (`/archive/debian/<STAMP>/`).
pub const DEFAULT_SNAPSHOT_MIRROR: &str = "https://snapshot.debian.org";

/// A snapshot time stamp, `YYYYMMDDTHHMMSSZ` (UTC), as the snapshot service's URLs carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct SnapshotStamp(String);

impl SnapshotStamp {
    /// The stamp of a time given as seconds since the epoch (the snapshot service serves, for any
    /// time, the newest snapshot not after it; so "latest" is simply "now").
    pub fn at_unix(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        Self(format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<SnapshotStamp> for String {
    fn from(s: SnapshotStamp) -> String {
        s.0
    }
}

impl fmt::Display for SnapshotStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SnapshotStamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("snapshot {:?} is not YYYYMMDDTHHMMSSZ (UTC, e.g. 20261204T000000Z)", s);
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &s[r];
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
        };
        let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) =
            (digits(0..4), digits(4..6), digits(6..8), digits(9..11), digits(11..13), digits(13..15))
        else {
            return Err(bad());
        };
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        // The snapshot service starts in 2005.
        if !(2005..=9999).contains(&y) || !(1..=12).contains(&mo) || d == 0 || d > month_days[mo as usize - 1] {
            return Err(bad());
        }
        if h > 23 || mi > 59 || se > 59 {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Where the packages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// The live archive: `<url>/debian` and `<url>/debian-security`. Moves on; a release built
    /// from it says so.
    Mirror { url: String },
    /// The archive as it was at `stamp`: `<url>/archive/debian/<stamp>/` and
    /// `<url>/archive/debian-security/<stamp>/`.
    Snapshot { url: String, stamp: SnapshotStamp },
    /// A directory holding exactly the lock's `.deb`s; no network.
    Archive { dir: PathBuf },
}

/// The provenance record of a source (`build.json`, the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRecord {
    /// `mirror` (the live archive: it moves on), `snapshot` or `archive`.
    pub kind: &'static str,
    /// The mirror or snapshot service (not for `archive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The snapshot stamp (only for `snapshot`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Whether the same source serves the same packages later (`false` for the live archive).
    pub immutable: bool,
}

impl PackageSource {
    /// Checks a mirror URL: `http`/`https`/`file`, no whitespace or control characters (it goes
    /// into an apt sources file), no trailing slash kept.
    pub fn check_url(url: &str) -> Result<String, String> {
        let ok_scheme = ["http://", "https://", "file:/"].iter().any(|s| url.starts_with(s));
        if !ok_scheme || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{:?} is not an http(s):// or file:/ URL", url));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }

    pub fn record(&self) -> SourceRecord {
        match self {
            Self::Mirror { url } => {
                SourceRecord { kind: "mirror", url: Some(url.clone()), snapshot: None, immutable: false }
            }
            Self::Snapshot { url, stamp } => SourceRecord {
                kind: "snapshot",
                url: Some(url.clone()),
                snapshot: Some(stamp.to_string()),
                immutable: true,
            },
            Self::Archive { .. } => SourceRecord { kind: "archive", url: None, snapshot: None, immutable: true },
        }
    }

    /// The package archive's directory, for an archive source.
    pub fn archive_dir(&self) -> Option<&std::path::Path> {
        match self {
            Self::Archive { dir } => Some(dir),
            _ => None,
        }
    }

    /// The archive roots apt fetches from (none for a package archive).
    pub fn uris(&self) -> Vec<String> {
        match self {
            Self::Mirror { url } => vec![format!("{url}/debian"), format!("{url}/debian-security")],
            Self::Snapshot { url, stamp } => {
                vec![format!("{url}/archive/debian/{stamp}"), format!("{url}/archive/debian-security/{stamp}")]
            }
            Self::Archive { .. } => Vec::new(),
        }
    }

    /// Every (package, version) the source's `Packages` indexes list, read from apt's lists
    /// directory after a run that fetched them (apt names each list file after its URI: the
    /// scheme dropped, `/` as `_`). `None` when no index of this source is there, or one of them
    /// cannot be read (a partial list would call every pin of the unread index dropped).
    pub fn available(&self, lists_dir: &std::path::Path) -> Option<std::collections::BTreeSet<(String, String)>> {
        let prefixes: Vec<String> = self
            .uris()
            .iter()
            .map(|u| format!("{}_dists_", u.split_once("://").map_or(u.as_str(), |(_, r)| r).replace('/', "_")))
            .collect();
        let mut out = std::collections::BTreeSet::new();
        let mut found = false;
        for e in std::fs::read_dir(lists_dir).ok()?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with("_Packages") || !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            found = true;
            // apt checked the index against the signed Release file; a description in another
            // encoding does not make its packages vanish.
            let text = String::from_utf8_lossy(&std::fs::read(e.path()).ok()?).into_owned();
            for stanza in text.split("\n\n") {
                let field = |key: &str| stanza.lines().find_map(|l| l.strip_prefix(key).map(str::trim));
                if let (Some(p), Some(v)) = (field("Package:"), field("Version:")) {
                    out.insert((p.to_owned(), v.to_owned()));
                }
            }
        }
        found.then_some(out)
    }

    /// A one-line description for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Mirror { url } => format!("the live archive at {url}"),
            Self::Snapshot { url, stamp } => format!("the snapshot {stamp} at {url}"),
            Self::Archive { dir } => format!("the package archive {}", dir.display()),
        }
    }

    /// The apt sources (deb822) for `release` (e.g. `trixie`: the release, its `-updates` and
    /// its `-security` suites), or an empty list for a package archive (mkosi serves that
    /// directory as a local repository). `keyring` is the `Signed-By` file as apt sees it.
    pub fn apt_sources(&self, release: &str, keyring: &str) -> String {
        let mut s = String::from("# Written by nodeimg for this build (packages: see packages.lock).\n");
        let (main, security, extra) = match self {
            Self::Mirror { url } => (format!("{url}/debian"), format!("{url}/debian-security"), ""),
            // Snapshot Release files carry a Valid-Until long past: the snapshot is the point.
            Self::Snapshot { url, stamp } => (
                format!("{url}/archive/debian/{stamp}/"),
                format!("{url}/archive/debian-security/{stamp}/"),
                "Check-Valid-Until: no\n",
            ),
            Self::Archive { .. } => return s,
        };
        for (uri, suites) in [(main, format!("{release} {release}-updates")), (security, format!("{release}-security"))]
        {
            s.push_str(&format!(
                "\nTypes: deb\nURIs: {uri}\nSuites: {suites}\nComponents: main\nSigned-By: {keyring}\n{extra}"
            ));
        }
        s
    }
}

/// What the user asked for on the command line; [`SourceChoice::resolve`] combines it with the
/// lock's `snapshot` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceChoice {
    /// `--mirror URL`: the live archive at this mirror.
    pub mirror: Option<String>,
    /// `--snapshot STAMP`: this snapshot (overrides the lock's).
    pub snapshot: Option<SnapshotStamp>,
    /// `--snapshot-mirror URL`: where snapshots are served (default [`DEFAULT_SNAPSHOT_MIRROR`]).
    pub snapshot_mirror: Option<String>,
    /// `--packages DIR`: a package archive.
    pub packages: Option<PathBuf>,
}

impl SourceChoice {
    /// The source a build uses: `--packages`, else `--mirror`, else a snapshot (`--snapshot`, else
    /// the lock's), else the live archive at the default mirror. Two of `--packages`,
    /// `--mirror` and `--snapshot` at once are refused.
    pub fn resolve(&self, locked: Option<&SnapshotStamp>) -> Result<PackageSource, String> {
        let given = [self.mirror.is_some(), self.snapshot.is_some(), self.packages.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err("give at most one of --mirror, --snapshot and --packages".into());
        }
        if let Some(dir) = &self.packages {
            return Ok(PackageSource::Archive { dir: dir.clone() });
        }
        if let Some(url) = &self.mirror {
            return Ok(PackageSource::Mirror { url: PackageSource::check_url(url)? });
        }
        let snapshot_url =
            || PackageSource::check_url(self.snapshot_mirror.as_deref().unwrap_or(DEFAULT_SNAPSHOT_MIRROR));
        if let Some(stamp) = self.snapshot.as_ref().or(locked) {
            return Ok(PackageSource::Snapshot { url: snapshot_url()?, stamp: stamp.clone() });
        }
        if self.snapshot_mirror.is_some() {
            return Err(
                "--snapshot-mirror needs a snapshot (--snapshot STAMP, or a `snapshot` line in packages.lock)".into()
            );
        }
        Ok(PackageSource::Mirror { url: DEFAULT_MIRROR.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice() {
        let stamp: SnapshotStamp = "20261204T000000Z".parse().unwrap();
        let live = PackageSource::Mirror { url: DEFAULT_MIRROR.into() };
        assert_eq!(SourceChoice::default().resolve(None).unwrap(), live);
        let locked = SourceChoice::default().resolve(Some(&stamp)).unwrap();
        assert_eq!(locked, PackageSource::Snapshot { url: DEFAULT_SNAPSHOT_MIRROR.into(), stamp: stamp.clone() });
        let c = SourceChoice { mirror: Some("http://m/".into()), ..Default::default() };
        assert_eq!(c.resolve(Some(&stamp)).unwrap(), PackageSource::Mirror { url: "http://m".into() });
        let c = SourceChoice { snapshot_mirror: Some("http://127.0.0.1:9".into()), ..Default::default() };
        assert!(c.resolve(None).unwrap_err().contains("needs a snapshot"));
        assert_eq!(
            c.resolve(Some(&stamp)).unwrap(),
            PackageSource::Snapshot { url: "http://127.0.0.1:9".into(), stamp: stamp.clone() }
        );
        let c = SourceChoice { mirror: Some("http://m".into()), packages: Some("/p".into()), ..Default::default() };
        assert!(c.resolve(None).unwrap_err().contains("at most one"));
    }

    #[test]
    fn stamps() {
        for good in ["20261204T000000Z", "20240229T235959Z", "20050312T000000Z"] {
            assert_eq!(good.parse::<SnapshotStamp>().unwrap().to_string(), good);
        }
        for bad in [
            "",
            "latest",
            "2026-12-04",
            "20261204T000000",
            "20261204t000000Z",
            "20230229T000000Z",
            "20261304T000000Z",
            "20261200T000000Z",
            "20261204T240000Z",
            "20261204T006000Z",
            "19991204T000000Z",
            "2026120+T000000Z",
            "２０26120T000000Z",
        ] {
            let err = bad.parse::<SnapshotStamp>().unwrap_err();
            assert!(err.contains("is not YYYYMMDDTHHMMSSZ"), "{bad:?}: {err}");
        }
        // date -u -d @1796342400 +%Y%m%dT%H%M%SZ
        assert_eq!(SnapshotStamp::at_unix(1_796_342_400).to_string(), "20261204T000000Z");
        assert_eq!(SnapshotStamp::at_unix(951_782_400 + 86_399).to_string(), "20000229T235959Z");
        assert_eq!(SnapshotStamp::at_unix(0).to_string(), "19700101T000000Z");
    }

    #[test]
    fn sources() {
        let snap =
            PackageSource::Snapshot { url: "http://127.0.0.1:8080".into(), stamp: "20261204T000000Z".parse().unwrap() };
        let s = snap.apt_sources("trixie", "/k.gpg");
        assert!(
            s.contains("URIs: http://127.0.0.1:8080/archive/debian/20261204T000000Z/\nSuites: trixie trixie-updates\n")
        );
        assert!(s.contains(
            "URIs: http://127.0.0.1:8080/archive/debian-security/20261204T000000Z/\nSuites: trixie-security\n"
        ));
        assert_eq!(s.matches("Check-Valid-Until: no").count(), 2, "{s}");
        assert_eq!(s.matches("Signed-By: /k.gpg").count(), 2, "{s}");
        let live = PackageSource::Mirror { url: DEFAULT_MIRROR.into() }.apt_sources("trixie", "/k.gpg");
        assert!(live.contains("URIs: http://deb.debian.org/debian\n") && !live.contains("Check-Valid-Until"), "{live}");
        assert!(!PackageSource::Archive { dir: "/p".into() }.apt_sources("trixie", "/k").contains("URIs"));
        assert!(!PackageSource::Mirror { url: "x".into() }.record().immutable);
        assert!(snap.record().immutable);
    }

    #[test]
    fn available_versions_from_apt_lists() {
        let t = tempfile::tempdir().unwrap();
        let src = PackageSource::Mirror { url: "http://127.0.0.1:18080".into() };
        assert_eq!(src.available(t.path()), None, "no index fetched yet");
        std::fs::write(
            t.path().join("127.0.0.1:18080_debian_dists_trixie_main_binary-amd64_Packages"),
            "Package: bash\nVersion: 5.2\nArchitecture: amd64\n\nPackage: dash\nArchitecture: amd64\nVersion: 0.5\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages"),
            "Package: zsh\nVersion: 1\n",
        )
        .unwrap();
        let got = src.available(t.path()).unwrap();
        let want: Vec<(String, String)> = vec![("bash".into(), "5.2".into()), ("dash".into(), "0.5".into())];
        assert_eq!(got.into_iter().collect::<Vec<_>>(), want, "only this source's indexes");
        // Not UTF-8 in a description: its package still counts.
        std::fs::write(
            t.path().join("127.0.0.1:18080_debian-security_dists_trixie-security_main_binary-amd64_Packages"),
            b"Package: zlib1g\nVersion: 1:1.3\nDescription: caf\xe9\n",
        )
        .unwrap();
        assert!(src.available(t.path()).unwrap().contains(&("zlib1g".into(), "1:1.3".into())));
        // An index that cannot be read: no answer rather than a partial one.
        std::fs::create_dir(t.path().join("127.0.0.1:18080_debian_dists_trixie-updates_main_binary-amd64_Packages"))
            .unwrap();
        assert_eq!(src.available(t.path()), None);
    }

    #[test]
    fn urls() {
        assert_eq!(PackageSource::check_url("http://127.0.0.1:1/").unwrap(), "http://127.0.0.1:1");
        for bad in ["ftp://x", "http://a b", "http://a\nURIs: evil", "deb.debian.org"] {
            assert!(PackageSource::check_url(bad).is_err(), "{bad:?}");
        }
    }
}
