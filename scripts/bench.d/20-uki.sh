# UKIs: nodeimg against trixie's ukify 257 and systemd-measure, on a ~70 MB UKI (the pinned
# Debian stub and cloud kernel from `make setup`, plus a 58 MiB random initrd).
#  * inspect: `nodeimg uki inspect --json` (Authenticode sha1/sha256/sha384 and sha256/sha384 of
#    every section, in parallel) vs `ukify inspect --json=short` (sha256 of the UKI sections),
#    and with `--bank` limited to the digests the peer computes;
#  * hashing: `--bank sha256 --bank sha384` against `systemd-measure calculate` (sha256 + sha384
#    of the UKI sections, which nodeimg also computes for the Authenticode digest);
#  * build: `nodeimg uki build` vs `ukify build` with the same inputs (outputs must be identical).
# The peers run inside tools/trixie-root through bubblewrap; its start-up cost is printed too.
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IN_TRIXIE=$ROOT/scripts/in-trixie
STUB=$ROOT/tools/uki/linuxx64.efi.stub
KERNEL=$ROOT/tools/uki/vmlinuz.signed
[ -f "$STUB" ] && [ -f "$KERNEL" ] || { echo "20-uki: $STUB or $KERNEL missing; run make setup" >&2; exit 2; }
d=$BENCH_DIR/uki
mkdir -p "$d"
initrd=$d/initrd.bin
[ "$(stat -c %s "$initrd" 2>/dev/null || echo 0)" = $((58 << 20)) ] || head -c $((58 << 20)) /dev/urandom > "$initrd"
printf 'ID=debian\nVERSION_ID=13\n' > "$d/os-release"
cmdline="console=ttyS0 root=/dev/vda ro"
printf '%s' "$cmdline" > "$d/cmdline"
"$IN_TRIXIE" ukify build --stub "$STUB" --linux "$KERNEL" --initrd "$initrd" --cmdline "$cmdline" \
  --os-release "@$d/os-release" --output "$d/ukify.efi" 2>/dev/null
"$NODEIMG" uki build --stub "$STUB" --linux "$KERNEL" --initrd "$initrd" --cmdline "$cmdline" \
  --os-release "@$d/os-release" -o "$d/nodeimg.efi"
cmp -s "$d/ukify.efi" "$d/nodeimg.efi" && echo "built UKIs: identical ($(stat -c %s "$d/ukify.efi") bytes)" \
  || { echo "built UKIs differ!"; exit 1; }
uki=$d/ukify.efi
cat "$uki" "$KERNEL" "$initrd" > /dev/null # warm the page cache

# The sections systemd-measure hashes, as files (the UKI's .uname and .sbat, from nodeimg's JSON).
"$NODEIMG" uki inspect --json "$uki" > "$d/inspect.json"
jq -j '.sections[] | select(.name == ".uname") | .text' "$d/inspect.json" > "$d/uname"
{ jq -j '.sections[] | select(.name == ".sbat") | .text' "$d/inspect.json"; printf '\0'; } > "$d/sbat"
measure="/usr/lib/systemd/systemd-measure calculate --linux=$KERNEL --initrd=$initrd --osrel=$d/os-release \
--cmdline=$d/cmdline --uname=$d/uname --sbat=$d/sbat --bank=sha256 --bank=sha384 --phase="

# The full inspect computes five digests of (nearly) every byte: Authenticode sha1, sha256 and
# sha384, and each section's sha256 and sha384. ukify computes one (sections, sha256) and
# systemd-measure two (sections, sha256 and sha384); --bank restricts nodeimg to the same work.
compare "nodeimg uki inspect --json" "$NODEIMG uki inspect --json $uki" \
        "ukify inspect --json" "$IN_TRIXIE ukify --json=short inspect $uki" --warmup 2 --runs 10
echo
compare "nodeimg inspect --bank sha256" "$NODEIMG uki inspect --json --bank sha256 $uki" \
        "ukify inspect --json" "$IN_TRIXIE ukify --json=short inspect $uki" --warmup 2 --runs 10
echo
compare "nodeimg inspect --bank 256,384" "$NODEIMG uki inspect --json --bank sha256 --bank sha384 $uki" \
        "systemd-measure calculate" "$IN_TRIXIE $measure" --warmup 2 --runs 10
echo
compare "nodeimg uki build" "$NODEIMG uki build --stub $STUB --linux $KERNEL --initrd $initrd --cmdline '$cmdline' --os-release @$d/os-release -o $d/n.efi" \
        "ukify build" "$IN_TRIXIE ukify build --stub $STUB --linux $KERNEL --initrd $initrd --cmdline '$cmdline' --os-release @$d/os-release --output $d/u.efi" \
        --warmup 1 --runs 5 --prepare "rm -f $d/n.efi $d/u.efi"
echo
json=$(mktemp)
hyperfine --style none --export-json "$json" --warmup 3 --runs 20 -n bwrap "$IN_TRIXIE true" >/dev/null
printf 'bubblewrap start-up (in the peers'"'"' times): median %.3f s\n' "$(median_of "$json")"
rm -f "$json" "$d/n.efi" "$d/u.efi"
