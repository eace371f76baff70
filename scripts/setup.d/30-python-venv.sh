# Python oracles from PyPI, in a venv under the repository (.venv/, gitignored); nothing is
# installed into the host's Python. Append a pinned `name==version` line to PIP_PKGS to add one.
PIP_PKGS=(
  sev-snp-measure==0.0.13 # SEV-SNP launch digests (measure::snp oracle)
  lief==1.0.0 # Authenticode digests sha1/sha256/sha384 (uki oracle, uki/testdata/*.gen.sh)
  in-toto-attestation==0.9.3 # in-toto Statement / SLSA Provenance v1 (release::export::intoto oracle)
  cryptography==50.0.2 # X.509, RSA-PSS, ECDSA P-384 (attest::snp_verify oracle, attest/testdata/snp-verdicts.gen.sh)
)
apt_install python3-venv
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python3" ]; then
  log "python3 -m venv $VENV"
  python3 -m venv "$VENV"
fi
pip_missing=()
for p in "${PIP_PKGS[@]}"; do
  name=${p%%==*} want=${p#*==}
  have=$("$VENV/bin/python3" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
  [ "$have" = "$want" ] || pip_missing+=("$p")
done
if [ ${#pip_missing[@]} -gt 0 ]; then
  log "pip install ${pip_missing[*]}"
  "$VENV/bin/python3" -m pip install -q --disable-pip-version-check "${pip_missing[@]}"
fi
