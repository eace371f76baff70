#!/usr/bin/env bash
# Fetches the Trustee files that tests/trustee_policy.rs evaluates our export with, at a pinned
# commit, checks each against its sha256, and derives ak.pem with openssl.
# Usage: trustee-policy.gen.sh [TRUSTEE_GIT]
#   With no argument each file is downloaded, e.g.
#     curl -fsSL https://raw.githubusercontent.com/confidential-containers/trustee/78962cd416dcc8a32f9377e0066a28fe21420f69/attestation-service/src/ear_token/ear_default_policy_cpu.rego
#   With TRUSTEE_GIT (a clone, or a bare git directory, of
#   github.com/confidential-containers/trustee) the files are read from that commit instead.
# Needs curl (or git), sha256sum, base64, openssl. CI does not run it: the files are committed.
set -euo pipefail
cd "$(dirname "$0")/trustee"
COMMIT=78962cd416dcc8a32f9377e0066a28fe21420f69
# sha256  path in trustee  -> file here
FILES="
1435d1f79d18e4e6d3defac9e246b35ba124b88bef4dc9cd07a07051a09bbb66 attestation-service/src/ear_token/ear_default_policy_cpu.rego ear_default_policy_cpu.rego
80172bbad57d733e9ed8ca0ef7ec2da9db7b6fb19dc1937b8aa4a6693dd62507 deps/verifier/test_data/tpm_evidence.json tpm_evidence.json
7fda965e39e014f8e6bac98b3fe33038ed679cecc19b18a0f919ed58159bb6e7 deps/verifier/test_data/parse_tdx_claims_expected.json parse_tdx_claims_expected.json
c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4 LICENSE LICENSE
"
get() {
  if [ $# -ge 2 ] && [ -n "$2" ]; then git -C "$2" show "$COMMIT:$1"
  else curl -fsSL "https://raw.githubusercontent.com/confidential-containers/trustee/$COMMIT/$1"; fi
}
echo "$FILES" | while read -r sum path name; do
  [ -n "$sum" ] || continue
  get "$path" "${1:-}" > "$name.tmp"
  echo "$sum  $name.tmp" | sha256sum --check --quiet - || { echo "$path: sha256 differs" >&2; exit 1; }
  mv "$name.tmp" "$name"
done
# The AK of Trustee's TPM evidence (its `ak_public`: base64 of a DER SubjectPublicKeyInfo) as the
# PEM file a user would pass to `nodeimg export --trusted-ak`; openssl does the conversion.
jq -r .ak_public tpm_evidence.json | base64 -d | openssl pkey -pubin -inform DER -outform PEM > ak.pem
echo "trustee policy fixtures regenerated" >&2
