//! The reproducible archive against GNU tar and zstd from Debian (the oracles, `make setup`).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use release::archive::{compress, write_tree, write_tree_zst};

const EPOCH: u64 = 1_700_000_000;

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the oracle `{program}` ({e}): run `make setup`"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A tree whose names exercise the sort order and whose sizes exercise block padding; files are
/// created in reverse order so that directory order differs from sorted order.
fn tree(root: &Path) {
    let files: &[(&str, usize)] = &[
        ("b.txt", 1),
        ("b/inner/zero", 0),
        ("b/inner/full-block", 512),
        ("b/one-more", 513),
        ("B", 511),
        ("a-1", 10_000),
        ("a", 1024),
        ("qemu-snp/disk.raw.zst", 70_000),
    ];
    for (i, (name, size)) in files.iter().enumerate().rev() {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let content: Vec<u8> = (0..*size).map(|j| (j * 7 + i) as u8).collect();
        fs::write(&path, content).unwrap();
    }
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    // Longer than ustar's 100-byte name field: split into prefix and name.
    let long = root.join("long").join("d".repeat(60)).join("e".repeat(40)).join("f".repeat(60));
    fs::create_dir_all(long.parent().unwrap()).unwrap();
    fs::write(long, b"long name").unwrap();
}

#[test]
fn byte_identical_to_gnu_tar_ustar() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("img-1.0.0");
    tree(&top);
    let ours = write_tree(&top, "img-1.0.0", EPOCH, &[], Vec::new(), &mut |_| {}).unwrap();
    let theirs = run(
        "tar",
        &[
            "--format=ustar",
            "--sort=name",
            &format!("--mtime=@{EPOCH}"),
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mode=go=rX,u=rwX",
            "-cf",
            "-",
            "img-1.0.0",
        ],
        dir.path(),
    )
    .stdout;
    if ours != theirs {
        let at = ours.iter().zip(&theirs).position(|(a, b)| a != b).unwrap_or(ours.len().min(theirs.len()));
        panic!(
            "archives differ at offset {at} (block {}, byte {}); lengths {} vs {}",
            at / 512,
            at % 512,
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn gnu_tar_lists_and_extracts_the_zstd_archive() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("img-1.0.0");
    tree(&top);
    let archive = dir.path().join("img.tar.zst");
    write_tree_zst(&top, "img-1.0.0", EPOCH, &[], fs::File::create(&archive).unwrap(), &mut |_| {}).unwrap();
    run("zstd", &["-q", "-t", "img.tar.zst"], dir.path());

    let listing = run("tar", &["--zstd", "-tvf", "img.tar.zst", "--numeric-owner", "--full-time", "--utc"], dir.path());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = listing.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    let (d, e, f) = ("d".repeat(60), "e".repeat(40), "f".repeat(60));
    let long = [
        "img-1.0.0/long/".to_owned(),
        format!("img-1.0.0/long/{d}/"),
        format!("img-1.0.0/long/{d}/{e}/"),
        format!("img-1.0.0/long/{d}/{e}/{f}"),
    ];
    let want: Vec<&str> = [
        "img-1.0.0/",
        "img-1.0.0/B",
        "img-1.0.0/a",
        "img-1.0.0/a-1",
        "img-1.0.0/b/",
        "img-1.0.0/b/inner/",
        "img-1.0.0/b/inner/full-block",
        "img-1.0.0/b/inner/zero",
        "img-1.0.0/b/one-more",
        "img-1.0.0/b.txt",
        "img-1.0.0/empty-dir/",
    ]
    .into_iter()
    .chain(long.iter().map(String::as_str))
    .chain(["img-1.0.0/qemu-snp/", "img-1.0.0/qemu-snp/disk.raw.zst"])
    .collect();
    assert_eq!(names, want, "{listing}");
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let want_mode = if line.ends_with('/') { "drwxr-xr-x" } else { "-rw-r--r--" };
        assert_eq!(f[0], want_mode, "{line}");
        assert_eq!(f[1], "0/0", "{line}");
        assert_eq!(format!("{} {}", f[3], f[4]), "2023-11-14 22:13:20", "{line}");
    }

    let out = dir.path().join("x");
    fs::create_dir(&out).unwrap();
    run("tar", &["--zstd", "-xf", "../img.tar.zst"], &out);
    let diff = Command::new("diff").args(["-r", "img-1.0.0", "x/img-1.0.0"]).current_dir(dir.path()).output().unwrap();
    assert!(diff.status.success(), "extracted tree differs: {}", String::from_utf8_lossy(&diff.stdout));
}

#[test]
fn two_runs_give_identical_archives() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    tree(a.path());
    tree(b.path());
    // Different file modes and mtimes on disk must not matter.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(b.path().join("a"), fs::Permissions::from_mode(0o600)).unwrap();
    let x = write_tree_zst(a.path(), "t", EPOCH, &[], Vec::new(), &mut |_| {}).unwrap();
    let y = write_tree_zst(b.path(), "t", EPOCH, &[], Vec::new(), &mut |_| {}).unwrap();
    assert!(x == y, "archives of equal trees differ");
}

#[test]
fn zstd_cli_decompresses_our_artefacts() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (n, compressed) = compress(&data[..], Vec::new()).unwrap();
    assert_eq!(n, data.len() as u64);
    fs::write(dir.path().join("a.zst"), compressed).unwrap();
    let out = run("zstd", &["-q", "-d", "-c", "a.zst"], dir.path());
    assert!(out.stdout == data, "zstd -d output differs");
}
