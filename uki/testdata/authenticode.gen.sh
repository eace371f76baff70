#!/usr/bin/env bash
# Regenerates authenticode/expected.json: Authenticode digests of the published PE vectors
# (google/authenticode-rs, copied from shared/vectors/authenticode) by LIEF, cross-checked with
# pesign, and checked against the digests authenticode-rs publishes. Needs `make setup`.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
[ -x "$ROOT/.venv/bin/python" ] && command -v pesign >/dev/null || { echo "run make setup" >&2; exit 1; }
cd authenticode
"$ROOT/.venv/bin/python" ../oracle_authenticode.py tiny32.efi tiny32.signed.efi tiny64.efi tiny64.signed.efi \
  | python3 -c '
import json, sys
got = json.load(sys.stdin)
published = {  # authenticode-rs, authenticode/tests/testdata (shared/vectors/README.md)
    "tiny32": ("49f239f1cd5083912880e03982bb54528f2c358d", "4f5b3633fc51d9447beb5c546e9ae6e58d6eb42d1e96d623dc168d97013c08a8"),
    "tiny64": ("e9bdfb63bdf687b8d3bf144033fcb09d7a393563", "a82d7e4f091c44ec75d97746b3461c8ea9151e2313f8e9a4330432ee5f25b2ae"),
}
for f, d in got.items():
    sha1, sha256 = published[f.split(".")[0]]
    assert (d["sha1"], d["sha256"]) == (sha1, sha256), f"{f}: {d} differs from the published digests"
json.dump(got, sys.stdout, indent=1)
print()
' > expected.json
echo "wrote $(pwd)/expected.json" >&2
