#!/usr/bin/env bash
# `make image` (after `make setup build`): builds the default image (the qemu platform) with
# mkosi into out/<image>-<version>/qemu/ — checked (package lock, verity root hash, UKI command
# line) and measured (reference-values.json: the predicted vTPM PCRs, SEV-SNP and TDX values as
# mkosi-profiles/mkosi.profiles/qemu/nodeimg.json asks) — then releases it as a
# signed bundle in out/release/<image>-<version>/.
#
# The bundle is signed with a development key generated on first use under
# out/release/insecure-dev-key/: INSECURE, for local builds only. A real release signs with the
# release engineer's key: nodeimg release --version V --key KEY.
# NODEIMG_BUILD_ARGS chooses other profiles, e.g. NODEIMG_BUILD_ARGS=--all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NODEIMG=$ROOT/target/release/nodeimg
# The checkout's tools cache, which `make setup` fills (docs/tools-cache.md).
export NODEIMG_TOOLS_DIR=${NODEIMG_TOOLS_DIR:-$ROOT/tools}
# The build and the release report what they do on stderr as they go (a spinner or a bar on a
# terminal, one line per stage otherwise: package downloads, image assembly, verity, checks,
# then hashing, compressing and archiving each artefact), so no minute is silent; the build's
# JSON report on stdout names the output directory.
echo "make image: building with mkosi (a first build downloads ~400 packages and takes a few minutes)" >&2
# shellcheck disable=SC2086
dir=$("$NODEIMG" build --json ${NODEIMG_BUILD_ARGS:-} | jq -r .dir)
name=$(jq -r .image.name "$dir/build.json")
version=$(jq -r .image.version "$dir/build.json")
# A release is never overwritten; `make image` replaces its own local one.
rm -rf "out/release/$name-$version"
echo "make image: releasing $dir as a signed bundle in out/release/$name-$version/" >&2
"$NODEIMG" release --version "$version" --input "$dir" --insecure-dev-key --out out/release
