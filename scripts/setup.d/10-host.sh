# Host packages from bookworm. cryptsetup-bin: veritysetup, the dm-verity oracle.
# debootstrap + bubblewrap: the trixie oracle root (next step). hyperfine, bc, time, openssl:
# `make bench`.
apt_install cryptsetup-bin debootstrap bubblewrap zstd xxd jq hyperfine bc time openssl
