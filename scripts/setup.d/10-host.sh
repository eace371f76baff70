# Host packages from bookworm. cryptsetup-bin: veritysetup, the dm-verity oracle.
# debootstrap + bubblewrap: the trixie oracle root (next step). hyperfine, bc, time, openssl:
# `make bench`. reprepro: mkosi indexes a package archive (`nodeimg build --packages DIR`) with it,
# from the host for the tools tree's own build. apt-utils (apt-ftparchive) + gnupg: the local, signed
# Debian mirrors of tests/rebuild_e2e.rs (tests/lib/mirror.sh).
apt_install cryptsetup-bin debootstrap bubblewrap zstd xxd jq hyperfine bc time openssl reprepro \
  apt-utils gnupg
