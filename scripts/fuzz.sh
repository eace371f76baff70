#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target in fuzz/fuzz_targets/ for FUZZ_SECONDS (default 60)
# each, with the nightly toolchain (installing cargo-fuzz if it is missing). A target that panics
# fails the run; libFuzzer leaves the crashing input in fuzz/artifacts/TARGET/. Set
# FUZZ_ONLY=NAME to run one target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$HOME/.cargo/bin:$PATH
SECONDS_EACH=${FUZZ_SECONDS:-60}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "+ rustup toolchain install nightly --profile minimal" >&2
  rustup toolchain install nightly --profile minimal || {
    echo "fuzz: no nightly Rust toolchain, and installing one failed: cargo-fuzz needs nightly" \
      "(libFuzzer's sanitizer flags). Install it ('rustup toolchain install nightly') and run make fuzz again." >&2
    exit 2
  }
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "+ cargo +nightly install cargo-fuzz --locked" >&2
  cargo +nightly install cargo-fuzz --locked || {
    echo "fuzz: cargo-fuzz is missing and 'cargo +nightly install cargo-fuzz --locked' failed" >&2
    exit 2
  }
fi
cd "$ROOT/fuzz"
for target in fuzz_targets/*.rs; do
  name=$(basename "$target" .rs)
  [ -z "${FUZZ_ONLY:-}" ] || [ "$name" = "$FUZZ_ONLY" ] || continue
  mkdir -p "corpus/$name"
  # fuzz/seeds/NAME (committed, e.g. a link to a crate's testdata) seeds the corpus.
  seeds=()
  [ -d "seeds/$name" ] && seeds=("seeds/$name")
  echo "+ cargo +nightly fuzz run $name -- -max_total_time=$SECONDS_EACH" >&2
  cargo +nightly fuzz run "$name" "corpus/$name" "${seeds[@]}" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048
done
echo "fuzz: ok" >&2
