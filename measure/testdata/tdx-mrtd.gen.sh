#!/usr/bin/env bash
# Regenerates tdx-mrtd.tsv: MRTD of Debian's OVMF builds (unpacked by `make setup` under
# tools/ovmf/) as computed by two independent public implementations:
#
#   td-shim   confidential-containers/td-shim, td-shim-tools/src/bin/td-shim-tee-info-hash/
#             td_shim_tee_info_hash.py (single-pass order only)
#   dstack-mr Dstack-TEE/dstack, dstack/dstack-mr/src/tdvf.rs (single- and two-pass), built
#             from source with a three-line function appended to its lib.rs that calls its own
#             crate-private `Tdvf::parse(..).mrtd_{single,two}_pass()`; nothing else is changed.
#
# Neither is on a package registry, so this script needs local git clones (bare is fine):
#   TD_SHIM_GIT=/path/to/td-shim(.git)  DSTACK_GIT=/path/to/dstack(.git)  ./tdx-mrtd.gen.sh
# It checks out the pinned commits below into tools/tdx-peers/ (gitignored) and builds dstack-mr
# there (crates from crates.io). A row is written only if every oracle that implements its order
# agrees; the tests then hold without the oracles.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TD_SHIM_COMMIT=125eeab58f69b891175c8803b4a824bfed7389c1
DSTACK_COMMIT=312dc605ebaaf93372534ffb135ea011533d28e9
: "${TD_SHIM_GIT:?set TD_SHIM_GIT to a clone of github.com/confidential-containers/td-shim}"
: "${DSTACK_GIT:?set DSTACK_GIT to a clone of github.com/Dstack-TEE/dstack}"
PEERS=$ROOT/tools/tdx-peers
mkdir -p "$PEERS"

# td-shim's Python MRTD calculator (standard library only).
git --git-dir="$TD_SHIM_GIT" show \
  "$TD_SHIM_COMMIT:td-shim-tools/src/bin/td-shim-tee-info-hash/td_shim_tee_info_hash.py" \
  >"$PEERS/td_shim_tee_info_hash.py"

# dstack-mr with dstack-types and size-parser, in a workspace of their own: dstack's full
# workspace has git dependencies that cannot be fetched here.
WS=$PEERS/dstack-mr-ws
HARNESS_VERSION=2 # bump when the appended harness below changes
if [ ! -x "$WS/target/release/examples/nodeimg-mrtd" ] || [ "$(cat "$WS/.commit" 2>/dev/null)" != "$DSTACK_COMMIT $HARNESS_VERSION" ]; then
  rm -rf "$WS"
  mkdir -p "$WS"
  git --git-dir="$DSTACK_GIT" archive "$DSTACK_COMMIT" dstack/Cargo.toml dstack/Cargo.lock \
    dstack/dstack-mr dstack/dstack-types dstack/size-parser | tar -x -C "$WS" --strip-components=1
  python3 - "$WS" <<'EOF'
import sys, tomllib, re, pathlib
ws = pathlib.Path(sys.argv[1])
root = tomllib.loads((ws / "Cargo.toml").read_text())
crates = ["dstack-mr", "dstack-types", "size-parser"]
def val(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, str): return '"%s"' % v
    if isinstance(v, list): return "[" + ", ".join(val(x) for x in v) + "]"
    if isinstance(v, dict): return "{ " + ", ".join(f'{k} = {val(x)}' for k, x in v.items()) + " }"
    return str(v)
need = set()
for c in crates:
    m = tomllib.loads((ws / c / "Cargo.toml").read_text())
    need |= set(m.get("dependencies", {}))
    # Drop dev-dependencies (reqwest & co. for a download test) so they need not resolve.
    text = (ws / c / "Cargo.toml").read_text()
    text = re.sub(r"\n\[dev-dependencies\]\n(?:[^\[].*\n?)*", "\n", text)
    (ws / c / "Cargo.toml").write_text(text)
deps = root["workspace"]["dependencies"]
out = ["[workspace]", 'members = ["dstack-mr", "dstack-types", "size-parser"]', 'resolver = "2"', "",
       "[workspace.package]"]
out += [f"{k} = {val(v)}" for k, v in root["workspace"]["package"].items()]
out += ["", "[workspace.dependencies]"]
out += [f"{k} = {val(deps[k])}" for k in sorted(need)]
(ws / "Cargo.toml").write_text("\n".join(out) + "\n")
EOF
  cat >>"$WS/dstack-mr/src/lib.rs" <<'EOF'

/// Appended by nodeimg's tdx-mrtd.gen.sh: exposes dstack-mr's own MRTD computation.
pub fn nodeimg_mrtd(fw: &[u8], two_pass: bool) -> Result<Vec<u8>> {
    let tdvf = tdvf::Tdvf::parse(fw)?;
    if two_pass { tdvf.mrtd_two_pass() } else { tdvf.mrtd_single_pass() }
}
EOF
  mkdir -p "$WS/dstack-mr/examples"
  cat >"$WS/dstack-mr/examples/nodeimg-mrtd.rs" <<'EOF'
fn main() -> anyhow::Result<()> {
    let usage = "usage: nodeimg-mrtd single-pass|two-pass OVMF.fd";
    let order = std::env::args().nth(1).expect(usage);
    let fw = std::fs::read(std::env::args().nth(2).expect(usage))?;
    println!("{}", hex::encode(dstack_mr::nodeimg_mrtd(&fw, order == "two-pass")?));
    Ok(())
}
EOF
  (cd "$WS" && cargo build -q --release -p dstack-mr --example nodeimg-mrtd)
  echo "$DSTACK_COMMIT $HARNESS_VERSION" >"$WS/.commit"
fi

out=$HERE/tdx-mrtd.tsv
tmp=$(mktemp)
printf 'firmware\tsha256\torder\tmrtd\toracles\n' >"$tmp"
for fw in "2022.11-6+deb12u2" "2025.02-8+deb13u1"; do
  f=$ROOT/tools/ovmf/$fw/usr/share/ovmf/OVMF.fd
  [ -f "$f" ] || { echo "$f missing: run make setup" >&2; exit 2; }
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  tdshim=$(python3 "$PEERS/td_shim_tee_info_hash.py" -l off --image "$f")
  ds_single=$("$WS/target/release/examples/nodeimg-mrtd" single-pass "$f")
  ds_two=$("$WS/target/release/examples/nodeimg-mrtd" two-pass "$f")
  if [ "$tdshim" != "$ds_single" ]; then
    echo "oracles disagree on $fw single-pass: td-shim $tdshim, dstack-mr $ds_single" >&2
    exit 1
  fi
  printf '%s\t%s\tsingle-pass\t%s\ttd-shim,dstack-mr\n' "ovmf/$fw/usr/share/ovmf/OVMF.fd" "$sha" "$ds_single" >>"$tmp"
  printf '%s\t%s\ttwo-pass\t%s\tdstack-mr\n' "ovmf/$fw/usr/share/ovmf/OVMF.fd" "$sha" "$ds_two" >>"$tmp"
done
mv "$tmp" "$out"
echo "wrote $out" >&2
