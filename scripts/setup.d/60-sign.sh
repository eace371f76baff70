# The sign and release crates' oracles: Debian's minisign (signatures, both ways), and GNU tar,
# zstd and coreutils' sha256sum for the release archive (tar and coreutils are essential; zstd
# comes with 10-host.sh). The in-toto Python bindings come with 30-python-venv.sh.
apt_install minisign
