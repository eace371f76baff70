# Event logs: nodeimg against tpm2_eventlog (tpm2-tools, which parses, prints YAML and replays
# the PCRs) on the captured real-boot log (measure/testdata/boot/sb-on, 44 events) and on a large
# log made of that log's events repeated 500 times (~22000 events, 5 MB; still a valid log).
#  * `nodeimg eventlog replay` (parse + replay) and `nodeimg eventlog show` (parse + decode +
#    print every event) vs `tpm2_eventlog` (parse + print + replay).
. "$(dirname "$0")/lib.sh"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v tpm2_eventlog >/dev/null || { echo "40-eventlog: tpm2_eventlog missing; run make setup" >&2; exit 2; }
d=$BENCH_DIR/eventlog
mkdir -p "$d"
small=$ROOT/measure/testdata/boot/sb-on/eventlog.bin
big=$d/big.bin
# The header event is 32 bytes plus 37 bytes of Spec ID data (two banks); the rest are events.
{ head -c 69 "$small"; for _ in $(seq 500); do tail -c +70 "$small"; done; } > "$big"
"$NODEIMG" eventlog replay --json "$big" | jq -e '.banks.sha256 | length == 10' >/dev/null \
  || { echo "40-eventlog: the big log does not replay"; exit 1; }

compare "nodeimg eventlog replay" "$NODEIMG eventlog replay $small" \
        "tpm2_eventlog" "tpm2_eventlog $small" --warmup 3 --runs 30 --output null -N
echo
compare "nodeimg eventlog replay (big)" "$NODEIMG eventlog replay $big" \
        "tpm2_eventlog (big)" "tpm2_eventlog $big" --warmup 1 --runs 10 --output null -N
echo
compare "nodeimg eventlog show (big)" "$NODEIMG eventlog show $big" \
        "tpm2_eventlog (big)" "tpm2_eventlog $big" --warmup 1 --runs 10 --output null -N
