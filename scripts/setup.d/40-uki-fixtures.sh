# The uki crate's oracles and test inputs.
#
# * Real Debian binaries (the tests' committed golden values in uki/testdata/ were computed from
#   exactly these): trixie's systemd-stub and the cloud kernel, both as Debian signed it and
#   unsigned. They are too big to commit. Their .debs are pinned by sha256 in the tools cache's
#   table (builder/src/toolscache.rs, group TestInputs) and 31-tools.sh fetches them with
#   `nodeimg setup --test-inputs`, which unpacks only these files and links them as
#   tools/uki/linuxx64.efi.stub, vmlinuz.signed and vmlinuz.unsigned (gitignored).
# * pesign (Debian) for uki/testdata/*.gen.sh, which regenerate the golden values; LIEF, the
#   other Authenticode oracle, is in .venv (30-python-venv.sh).
# * ukify, systemd-measure and python3-pefile come with tools/trixie-root (20-trixie-root.sh).
#
# The empty stamps this step wrote when it unpacked the binaries itself (tools/uki/.NAME.SHA256)
# are left alone: they keep an older checkout's setup, sharing tools/, from unpacking again.

# pesign (bookworm): a second, independent Authenticode implementation (sha1, sha256) that
# uki/testdata/oracle_authenticode.py checks LIEF (.venv, 30-python-venv.sh) against.
apt_install pesign
