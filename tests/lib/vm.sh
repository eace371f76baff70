# What the two real-boot harnesses share (sourced by tests/boot/boot-capture.sh and
# tests/image/boot.sh): a fresh swtpm, a QEMU run to power-off, and reading the capture port.
# The caller sets `work` (its scratch directory, where swtpm.sock, console.log and qemu.log
# live), defines `die MESSAGE`, and kills `swtpm_pid` / `qemu_pid` in its cleanup.

# vm_swtpm BANKS: a fresh TPM 2.0 with the PCR banks BANKS (swtpm_setup syntax, sha256,sha384)
# listening on $work/swtpm.sock; sets swtpm_pid.
vm_swtpm() {
  mkdir -p "$work/tpm"
  swtpm_setup --tpm2 --tpmstate "$work/tpm" --pcr-banks "$1" --overwrite \
    >"$work/swtpm_setup.log" 2>&1 || { cat "$work/swtpm_setup.log" >&2; die "swtpm_setup failed"; }
  swtpm socket --tpm2 --tpmstate dir="$work/tpm" --ctrl type=unixio,path="$work/swtpm.sock" \
    --log file="$work/swtpm.log",level=1 &
  swtpm_pid=$!
  for _ in $(seq 100); do [ -S "$work/swtpm.sock" ] && break; sleep 0.1; done
  [ -S "$work/swtpm.sock" ] || { cat "$work/swtpm.log" >&2; die "swtpm did not start"; }
}

# vm_run TIMEOUT QEMU ARG…: runs QEMU until the guest powers off. Dies, with the tails of
# $work/console.log and $work/qemu.log, when TIMEOUT seconds pass, when KVM reports an internal
# error (it stops the guest instead of failing), or when QEMU exits with an error.
vm_run() {
  local timeout=$1 deadline
  shift
  : >"$work/qemu.log"
  echo "+ $*" >&2
  "$@" 2>"$work/qemu.log" &
  qemu_pid=$!
  deadline=$((SECONDS + timeout))
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ] || grep -qs 'internal error' "$work/qemu.log"; then
      tail -c 4000 "$work/console.log" >&2 || true
      tail -c 2000 "$work/qemu.log" >&2 || true
      die "the guest did not power off within ${timeout}s (console and qemu tails above)"
    fi
    sleep 1
  done
  wait "$qemu_pid" || { cat "$work/qemu.log" >&2; qemu_pid=; die "qemu failed (above)"; }
  qemu_pid=
}

# vm_block CAPTURE NAME: the base64 lines between "NAME begin" and "NAME end", decoded.
vm_block() {
  sed -n "/^$2 begin\$/,/^$2 end\$/p" "$1" | sed '1d;$d' | base64 -d
}

# vm_pcrs CAPTURE: the "pcr BANK INDEX HEX" lines as {"BANK": {"INDEX": "hex"}, …}.
vm_pcrs() {
  awk '$1 == "pcr" { printf "%s %s %s\n", $2, $3, tolower($4) }' "$1" \
    | jq -R -s 'split("\n") | map(select(length > 0) | split(" "))
        | reduce .[] as $p ({}; .[$p[0]][$p[1]] = $p[2])'
}
