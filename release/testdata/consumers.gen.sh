#!/usr/bin/env bash
# Regenerates the exporter fixtures from the consumers' own repositories, at pinned commits.
# Usage: consumers.gen.sh CONSTELLATION_GIT TRUSTEE_GIT INTOTO_ATTESTATION_GIT
# (each a clone, or a bare git directory, of github.com/edgelesssys/constellation,
# github.com/confidential-containers/trustee and github.com/in-toto/attestation).
set -euo pipefail
cd "$(dirname "$0")"
[ $# -eq 3 ] || { sed -n 2,5p "$0" >&2; exit 2; }
CONSTELLATION_COMMIT=7cb5b83b134b8de708937ed4935e594031901bcc
TRUSTEE_COMMIT=78962cd416dcc8a32f9377e0066a28fe21420f69
INTOTO_COMMIT=051624ce466deaed4c5a66e66877f69b471fccbe
show() { git -C "$1" show "$2:$3"; }
# The first backquoted JSON document on the line after the match.
backquoted_after() { grep -A1 -F "$1" | grep -o '`{.*}`' | head -1 | tr -d '`'; }

# Constellation: measurements v2 documents from its tests.
show "$1" $CONSTELLATION_COMMIT internal/attestation/measurements/measurements_test.go \
  | backquoted_after '"json measurements": {' > constellation/measurements-v2-dummy.json
show "$1" $CONSTELLATION_COMMIT cli/internal/cmd/upgradecheck_test.go \
  | grep -o '`{"version": "v0.0.0".*}`' | head -1 | tr -d '`' > constellation/measurements-v2-azure.json

# Trustee: the sample message exactly as rvps/README.md builds it, and the reference-value names
# the default CPU policy queries (comments excluded).
show "$2" $TRUSTEE_COMMIT rvps/README.md | sed -n '/^cat << EOF > sample$/,/^EOF$/p' | sed '1d;$d' > trustee/sample
printf '{\n    "version" : "0.1.0",\n    "type": "sample",\n    "payload": "%s"\n}\n' \
  "$(base64 --wrap=0 < trustee/sample)" > trustee/rvps-message.json
show "$2" $TRUSTEE_COMMIT attestation-service/src/ear_token/ear_default_policy_cpu.rego \
  | sed 's/#.*//' | grep -o 'query_reference_value("[a-z0-9_]*")' \
  | sed 's/.*("\(.*\)")/\1/' | LC_ALL=C sort -u > trustee/default-policy-names.txt

# in-toto: the Statement and SLSA Provenance v1 documents of the Go bindings' tests.
show "$3" $INTOTO_COMMIT go/v1/statement_test.go | grep -o 'wantSt = `{.*}`' | head -1 \
  | sed 's/^wantSt = `//; s/`$//' > intoto/statement.json
show "$3" $INTOTO_COMMIT go/predicates/provenance/v1/provenance_test.go | grep -o 'wantSt = `{.*}`' | head -1 \
  | sed 's/^wantSt = `//; s/`$//' > intoto/provenance.json
echo "fixtures regenerated" >&2
