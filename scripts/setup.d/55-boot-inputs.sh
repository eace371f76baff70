# The inputs of the real-boot fixtures (measure/testdata/boot/), rebuilt without booting: the
# capture UKI (unsigned for sb-off and extras, snakeoil-signed for sb-on), the disk's GPT and, for
# extras, the files next to the UKI on the ESP, made by
# tests/boot/boot-capture.sh --inputs-only from the pinned kernel, stub, firmware and busybox.
# The boot-chain model's fixture test (measure/tests/boot_model.rs) predicts from them and
# compares with what the real boots measured. Rebuilt when the harness or an input changes.
BOOT_INPUTS=$TOOLS/boot
boot_stamp=$(cat "$ROOT/tests/boot/boot-capture.sh" "$ROOT/tests/boot/init" "$TOOLS/uki/vmlinuz.signed" \
  "$TOOLS/uki/linuxx64.efi.stub" /bin/busybox | sha256sum | cut -d' ' -f1)
if [ "$(cat "$BOOT_INPUTS/.stamp" 2>/dev/null)" != "$boot_stamp" ]; then
  log "tests/boot/boot-capture.sh --inputs-only -> $BOOT_INPUTS"
  rm -rf "$BOOT_INPUTS"
  "$ROOT/tests/boot/boot-capture.sh" --inputs-only --out "$BOOT_INPUTS/sb-off"
  "$ROOT/tests/boot/boot-capture.sh" --inputs-only --secure-boot --out "$BOOT_INPUTS/sb-on"
  "$ROOT/tests/boot/boot-capture.sh" --inputs-only --extras --out "$BOOT_INPUTS/extras"
  echo "$boot_stamp" >"$BOOT_INPUTS/.stamp"
fi
