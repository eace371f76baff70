# The boot-chain model: `nodeimg measure pcrs` against `systemd-measure calculate` (systemd 257,
# trixie), the one peer that predicts part of it, on the real-boot capture UKI (13 MB,
# tools/boot/sb-off from `make setup`), sha256 + sha384 for both. systemd-measure computes PCR 11
# only (each section hashed once per bank, every phase); nodeimg also hashes the UKI's and the
# kernel's Authenticode ranges (PCR 4), the initrd the kernel sees (PCR 9) and the Secure Boot
# variables (PCR 7): about three times the bytes per bank (on a quiet machine compare the user
# times too: the work per byte is alike).
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
uki=$ROOT/tools/boot/sb-off/uki.efi
[ -f "$uki" ] || { echo "45-pcrs: $uki missing; run make setup" >&2; exit 2; }
d=$BENCH_DIR/pcrs
mkdir -p "$d"
args=()
for s in linux osrel cmdline initrd uname sbat; do
  objcopy -O binary --only-section=".$s" "$uki" "$d/$s"
  args+=("--$s=$d/$s")
done
# Both agree on PCR 11 (after the stub) before they are timed.
ours=$("$NODEIMG" measure pcrs --uki "$uki" --banks sha256 --json | jq -r '.pcr11_phases.sha256.stub')
theirs=$("$ROOT/scripts/in-trixie" /usr/lib/systemd/systemd-measure calculate "${args[@]}" --bank=sha256 --phase= \
  2>/dev/null | sed -n "s/^11:sha256=//p")
[ "$ours" = "$theirs" ] || { echo "45-pcrs: PCR 11 differs: nodeimg $ours, systemd-measure $theirs"; exit 1; }
compare "nodeimg measure pcrs" "$NODEIMG measure pcrs --uki $uki --banks sha256,sha384" \
        "systemd-measure calculate" "$ROOT/scripts/in-trixie /usr/lib/systemd/systemd-measure calculate ${args[*]} --bank=sha256 --bank=sha384" \
        --warmup 2 --runs 10 --output null -N
