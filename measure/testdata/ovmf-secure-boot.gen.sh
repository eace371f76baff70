#!/usr/bin/env bash
# Which of Debian's pinned OVMF builds (tools/ovmf/, from `make setup`) contain edk2's
# SecureBootConfigDxe module (FILE_GUID f0e6a44f-7195-41c3-ac64-54f202cd0a21), found without
# nodeimg's firmware-volume walker: Python's lzma module (liblzma) decompresses every edk2 LZMA
# GUIDed section (ee4e5898-3914-4259-9d6e-dc7bd79403cf) it finds by a byte search, and the
# decompressed bytes are searched for the GUID. Writes ovmf-secure-boot.tsv:
# version, file, sha256, yes|no.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
python3 - "$ROOT/tools/ovmf" > "$HERE/ovmf-secure-boot.tsv" <<'PY'
import hashlib, lzma, pathlib, sys, uuid
SBCFG = uuid.UUID("f0e6a44f-7195-41c3-ac64-54f202cd0a21").bytes_le
LZMA = uuid.UUID("ee4e5898-3914-4259-9d6e-dc7bd79403cf").bytes_le
root = pathlib.Path(sys.argv[1])
print("# version\tfile\tsha256\tSecureBootConfigDxe")
for path in sorted(root.glob("*/usr/share/OVMF/OVMF_CODE*.fd")):
    data = path.read_bytes()
    found, sections, i = False, 0, 0
    while (i := data.find(LZMA, i + 1)) >= 0:
        hdr = i - 4  # EFI_COMMON_SECTION_HEADER: 24-bit size, type 0x02 (GUID-defined)
        if hdr < 0 or data[hdr + 3] != 0x02:
            continue
        size = int.from_bytes(data[hdr:hdr + 3], "little")
        offset = int.from_bytes(data[i + 16:i + 18], "little")
        out = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data[hdr + offset:hdr + size])
        sections += 1
        found = found or SBCFG in out
    assert sections > 0, f"{path}: no LZMA section"
    version = path.relative_to(root).parts[0]
    print(f"{version}\t{path.name}\t{hashlib.sha256(data).hexdigest()}\t{'yes' if found else 'no'}")
PY
