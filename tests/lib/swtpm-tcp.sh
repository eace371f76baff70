# A swtpm that tpm2-tools talk to over loopback TCP, for scripts that drive tpm2-tools themselves
# (sourced by attest/testdata/quote/quote.gen.sh and scripts/bench.d/47-quote.sh; QEMU's swtpm is
# tests/lib/vm.sh's vm_swtpm). The caller kills $swtpm_pid in its cleanup.

# swtpm_tcp DIR BANKS: a fresh TPM 2.0 with the PCR banks BANKS (swtpm_setup syntax,
# sha256,sha384) whose state lives in DIR, serving commands and control on two free loopback
# ports; sets swtpm_pid and exports TPM2TOOLS_TCTI, then waits for the TPM to answer.
swtpm_tcp() {
  local port
  mkdir -p "$1"
  swtpm_setup --tpm2 --tpmstate "$1" --pcr-banks "$2" --overwrite >/dev/null
  port=$(python3 -c 'import socket
while True:
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]
    t=socket.socket()
    try: t.bind(("127.0.0.1",p+1)); print(p); break
    except OSError: pass')
  swtpm socket --tpm2 --tpmstate dir="$1" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
  swtpm_pid=$!
  export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
  for _ in $(seq 50); do tpm2_getrandom 1 >/dev/null 2>&1 && break; sleep 0.1; done
}

# flush: without a resource manager, transient objects and sessions are flushed after each
# command that leaves some.
flush() { tpm2_flushcontext -t >/dev/null; tpm2_flushcontext -s >/dev/null; }
