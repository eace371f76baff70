#!/usr/bin/env python3
"""Oracle: PE section tables by pefile, and PCR 11 by systemd-measure (both from Debian trixie).

Runs inside tools/trixie-root (scripts/in-trixie). For each file prints, as JSON, what pefile
reads from its headers, the sha256/sha384 of each section's bytes as the loader maps them
(VirtualSize bytes: the raw data, zero-filled past SizeOfRawData), the systemd-stub LoaderInfo
string, and, with --measure, what `systemd-measure calculate --phase=` gives for the UKI's
sections (PCR 11 after the section measurements, before any boot phase).
"""
import hashlib
import json
import re
import subprocess
import sys
import tempfile

import pefile

UNIFIED = ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat',
           '.pcrsig', '.pcrpkey', '.profile', '.dtbauto', '.hwids']


def describe(path, measure):
    data = open(path, 'rb').read()
    pe = pefile.PE(data=data, fast_load=True)
    sections = []
    for s in pe.sections:
        n = min(s.Misc_VirtualSize, s.SizeOfRawData)
        mem = data[s.PointerToRawData:s.PointerToRawData + n] + bytes(s.Misc_VirtualSize - n)
        sections.append({
            'name': s.Name.rstrip(b'\0').decode(),
            'virtual_address': s.VirtualAddress,
            'virtual_size': s.Misc_VirtualSize,
            'raw_size': s.SizeOfRawData,
            'offset': s.PointerToRawData,
            'characteristics': s.Characteristics,
            'sha256': hashlib.sha256(mem).hexdigest(),
            'sha384': hashlib.sha384(mem).hexdigest(),
        })
    m = re.search(rb'#### LoaderInfo: (.*?) ####', data)
    sec = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY['IMAGE_DIRECTORY_ENTRY_SECURITY']]
    out = {
        'size': len(data),
        'sha256': hashlib.sha256(data).hexdigest(),
        'loader_info': m.group(1).decode() if m else None,
        'signed': sec.VirtualAddress != 0,
        'size_of_image': pe.OPTIONAL_HEADER.SizeOfImage,
        'size_of_headers': pe.OPTIONAL_HEADER.SizeOfHeaders,
        'size_of_initialized_data': pe.OPTIONAL_HEADER.SizeOfInitializedData,
        'dll_characteristics': pe.OPTIONAL_HEADER.DllCharacteristics,
        'sections': sections,
    }
    if measure:
        with tempfile.TemporaryDirectory() as tmp:
            args = []
            for s in pe.sections:
                name = s.Name.rstrip(b'\0').decode()
                if name in UNIFIED and name != '.pcrsig':
                    n = min(s.Misc_VirtualSize, s.SizeOfRawData)
                    f = f'{tmp}/{name[1:]}'
                    open(f, 'wb').write(data[s.PointerToRawData:s.PointerToRawData + n])
                    args.append(f'--{name[1:]}={f}')
            res = subprocess.run(['/usr/lib/systemd/systemd-measure', 'calculate', *args, '--bank=sha256',
                                  '--bank=sha384', '--phase=', '--json=short'],
                                 check=True, capture_output=True, text=True)
            pcr = json.loads(res.stdout)
            out['pcr11'] = {bank: entries[0]['hash'] for bank, entries in sorted(pcr.items())}
    return out


def main():
    measure = '--measure' in sys.argv[1:]
    files = [a for a in sys.argv[1:] if a != '--measure']
    json.dump({f: describe(f, measure) for f in files}, sys.stdout)


main()
