# Python oracles from PyPI, in a venv under the repository (.venv/, gitignored); nothing is
# installed into the host's Python. Append a pinned `name==version` line to PIP_PKGS to add one.
PIP_PKGS=(
  sev-snp-measure==0.0.13 # SEV-SNP launch digests (measure::snp oracle)
  lief==1.0.0 # Authenticode digests sha1/sha256/sha384 (uki oracle, uki/testdata/*.gen.sh)
  in-toto-attestation==0.9.3 # in-toto Statement / SLSA Provenance v1 (release::export::intoto oracle)
  cryptography==50.0.2 # X.509, RSA-PSS, ECDSA P-384 (attest::snp_verify oracle, attest/testdata/snp-verdicts.gen.sh)
  keylime==7.14.3 # Keylime's verifier and tenant code (release::export::keylime oracle, tests/keylime_cli.rs)
  # What keylime imports on the verifier's quote and measured-boot path (its wheel declares no
  # dependencies; keylime's requirements.txt names them), with theirs:
  PyYAML==6.0.4
  pyasn1==0.6.5
  pyasn1_modules==0.4.2
  lark==1.3.1
  packaging==26.4
  typing_extensions==4.16.0
  jsonschema==4.26.0
  attrs==26.1.0
  jsonschema-specifications==2025.9.1
  referencing==0.37.0
  rpds-py==2026.9.1
)
# keylime also needs the GnuPG bindings, which keylime says must come from the distribution (they
# match its GPG; not on PyPI as a wheel), and libefivar (its event-log enrichment loads
# libefivar.so.1). tpm2_eventlog, which parses event logs for it, comes with tpm2-tools (50-boot.sh).
apt_install python3-venv python3-gpg libefivar1
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
# The distribution's gpg module, visible to the venv (only it: no system site-packages).
site=$("$VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(readlink "$site/gpg" 2>/dev/null || true)" != /usr/lib/python3/dist-packages/gpg ]; then
  log "linking python3-gpg into $VENV"
  ln -sfn /usr/lib/python3/dist-packages/gpg "$site/gpg"
fi
