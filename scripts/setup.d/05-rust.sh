# Rust and a C toolchain. build-essential: cc links Rust programs, and zstd-sys and ring compile
# C; curl + ca-certificates: rustup. When cargo is missing, rustup-init (pinned by version and
# sha256, from static.rust-lang.org; its stable release) installs rustup into ~/.cargo without touching shell
# profiles (the Makefile puts ~/.cargo/bin on PATH), then the toolchain rust-toolchain.toml names,
# with its components; rustup checks what it downloads against the release's signed manifest.
apt_install build-essential curl ca-certificates
export PATH=$HOME/.cargo/bin:$PATH
if ! command -v cargo >/dev/null; then
  rustup_version=1.28.2
  rustup_sha256=20a06e644b0d9bd2fbdbfd52d42540bdde820ea7df86e92e533c073da0cdd43c
  url=https://static.rust-lang.org/rustup/archive/$rustup_version/x86_64-unknown-linux-gnu/rustup-init
  log "rustup $rustup_version from $url"
  rustup_tmp=$(mktemp -d)
  curl --proto '=https' --tlsv1.2 -fsS -o "$rustup_tmp/rustup-init" "$url" \
    || { echo "setup: downloading $url failed; install Rust yourself (https://rustup.rs), then run 'make setup' again" >&2; exit 1; }
  got=$(sha256sum "$rustup_tmp/rustup-init" | cut -d' ' -f1)
  if [ "$got" != "$rustup_sha256" ]; then
    echo "setup: $url has sha256 $got, but $rustup_sha256 is pinned" >&2
    rm -rf "$rustup_tmp"
    exit 1
  fi
  chmod +x "$rustup_tmp/rustup-init"
  "$rustup_tmp/rustup-init" -y -q --no-modify-path --profile minimal --default-toolchain none
  rm -rf "$rustup_tmp"
  rustup set auto-self-update disable # stays the pinned version
  log "rustup toolchain install (rust-toolchain.toml)"
  (cd "$ROOT" && rustup toolchain install)
fi
