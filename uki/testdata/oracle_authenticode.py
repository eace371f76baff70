#!/usr/bin/env python3
"""Oracle: Authenticode digests by LIEF (PyPI `lief`, in .venv), cross-checked with pesign.

For each file prints sha1, sha256 and sha384 of the PE image hash as computed by LIEF's
`authentihash`, and fails unless Debian's `pesign --hash` (an independent C implementation,
sha1 and sha256 only) agrees.
"""
import json
import subprocess
import sys

import lief

ALGS = {'sha1': lief.PE.ALGORITHMS.SHA_1, 'sha256': lief.PE.ALGORITHMS.SHA_256, 'sha384': lief.PE.ALGORITHMS.SHA_384}


def digests(path):
    pe = lief.PE.parse(path)
    out = {name: bytes(pe.authentihash(alg)).hex() for name, alg in ALGS.items()}
    for name in ('sha1', 'sha256'):
        res = subprocess.run(['pesign', '--hash', '-d', name, '-i', path], check=True, capture_output=True, text=True)
        theirs = res.stdout.split('hash:')[1].split()[0].strip()
        if theirs != out[name]:
            sys.exit(f'{path}: LIEF {name} {out[name]} but pesign {theirs}')
    return out


json.dump({f: digests(f) for f in sys.argv[1:]}, sys.stdout)
