#!/usr/bin/env bash
# A local Debian mirror for the rebuild tests: Debian's layout (dists/SUITE/Release, InRelease,
# main/binary-amd64/Packages, pool/), indexed by apt-ftparchive and signed by a throwaway OpenPGP
# key, served over HTTP on 127.0.0.1 by the caller.
#
#   mirror.sh keygen GNUPGHOME KEYRING          a signing key, and its public keyring (binary)
#   mirror.sh suite ROOT/debian RELEASE DEBS… GNUPGHOME
#                                               RELEASE, RELEASE-updates (empty) with the .debs
#   mirror.sh suite ROOT/debian-security RELEASE-security GNUPGHOME
#                                               an empty security suite
#   mirror.sh repack DEB NEWVERSION OUTDIR      the same package under a newer version (what a
#                                               point release does to a locked package)
#
# The live layout is ROOT/debian and ROOT/debian-security; the snapshot layout (as
# snapshot.debian.org serves it) is ROOT/archive/debian/STAMP and ROOT/archive/debian-security/STAMP.
set -euo pipefail

sign() { # GNUPGHOME DIR: Release -> InRelease + Release.gpg
  gpg --homedir "$1" --batch --yes --quiet --clearsign -o "$2/InRelease" "$2/Release"
  gpg --homedir "$1" --batch --yes --quiet -abs -o "$2/Release.gpg" "$2/Release"
}

index() { # ARCHIVE SUITE GNUPGHOME: writes dists/SUITE from pool/SUITE (possibly empty)
  local archive=$1 suite=$2 home=$3
  local d=$archive/dists/$suite
  mkdir -p "$d/main/binary-amd64" "$archive/pool/$suite"
  (cd "$archive" && apt-ftparchive packages "pool/$suite" >"dists/$suite/main/binary-amd64/Packages")
  gzip -9nkf "$d/main/binary-amd64/Packages"
  apt-ftparchive \
    -o APT::FTPArchive::Release::Origin=nodeimg-test \
    -o APT::FTPArchive::Release::Label=nodeimg-test \
    -o APT::FTPArchive::Release::Suite="$suite" \
    -o APT::FTPArchive::Release::Codename="$suite" \
    -o APT::FTPArchive::Release::Architectures="amd64 all" \
    -o APT::FTPArchive::Release::Components=main \
    -o APT::FTPArchive::Release::Date="Fri, 04 Dec 2026 00:00:00 UTC" \
    release "$d" >"$d/Release.tmp"
  mv "$d/Release.tmp" "$d/Release"
  sign "$home" "$d"
}

case "${1:-}" in
keygen)
  home=$2 keyring=$3
  mkdir -p "$home"
  chmod 700 "$home"
  gpg --homedir "$home" --batch --quiet --passphrase '' \
    --quick-generate-key 'nodeimg test mirror <test@nodeimg.invalid>' ed25519 sign never
  gpg --homedir "$home" --batch --quiet --export >"$keyring"
  ;;
suite)
  archive=$2 suite=$3
  shift 3
  home=${!#}
  debs=("${@:1:$#-1}")
  mkdir -p "$archive/pool/$suite"
  for deb in "${debs[@]}"; do
    ln -f "$deb" "$archive/pool/$suite/" 2>/dev/null || cp "$deb" "$archive/pool/$suite/"
  done
  index "$archive" "$suite" "$home"
  if [ "${suite%-security}" = "$suite" ]; then
    index "$archive" "$suite-updates" "$home"
  fi
  ;;
repack)
  deb=$2 version=$3 out=$4
  work=$(mktemp -d)
  dpkg-deb -R "$deb" "$work/x"
  sed -i "s/^Version: .*/Version: $version/" "$work/x/DEBIAN/control"
  pkg=$(sed -n 's/^Package: //p' "$work/x/DEBIAN/control")
  arch=$(sed -n 's/^Architecture: //p' "$work/x/DEBIAN/control")
  mkdir -p "$out"
  dpkg-deb --root-owner-group -Zxz -b "$work/x" "$out/${pkg}_${version//:/%3a}_$arch.deb" >/dev/null
  rm -rf "$work"
  echo "$out/${pkg}_${version//:/%3a}_$arch.deb"
  ;;
*)
  echo "usage: mirror.sh keygen|suite|repack …" >&2
  exit 2
  ;;
esac
