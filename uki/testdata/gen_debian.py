#!/usr/bin/env python3
"""Builds UKIs with trixie's ukify from the pinned Debian stub and kernel, runs the oracles over
them and over the Debian binaries, and writes debian.json. Run by debian.gen.sh."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
TOOLS = os.path.join(ROOT, 'tools', 'uki')
IN_TRIXIE = os.path.join(ROOT, 'scripts', 'in-trixie')
VENV_PY = os.path.join(ROOT, '.venv', 'bin', 'python')
BINARIES = ['linuxx64.efi.stub', 'vmlinuz.signed', 'vmlinuz.unsigned']

# Each configuration is a list of (option, value): `linux` names a file in tools/uki; other paths
# are relative to this directory. An option ending in `@` passes the file as ukify's `@PATH`.
# Without `os-release`/`os-release@`, ukify is given `--os-release=` (no .osrel section: nodeimg
# never reads the build host's /etc/os-release). Without `uname`, both detect it from the kernel.
CONFIGS = {
    'minimal': [('linux', 'vmlinuz.signed'), ('cmdline', 'console=ttyS0')],
    'cmdline-b': [('linux', 'vmlinuz.signed'),
                  ('cmdline', 'console=ttyS0 ' + ' '.join(f'nodeimg.pad{i}=' + 'x' * 40 for i in range(14)))],
    'full': [('linux', 'vmlinuz.unsigned'), ('initrd', 'inputs/initrd-a.bin'), ('initrd', 'inputs/initrd-b.bin'),
             ('cmdline', '  root=/dev/vda \t ro  console=ttyS0 '), ('os-release@', 'inputs/os-release'),
             ('uname', '6.12.0-test'), ('sbat@', 'inputs/sbat.csv'), ('splash', 'inputs/splash.bmp'),
             ('devicetree', 'inputs/devicetree.dtb'), ('pcrpkey', 'inputs/pcrpkey.pem'),
             ('microcode', 'inputs/ucode.bin')],
    'cmdline-file': [('linux', 'vmlinuz.signed'), ('initrd', 'inputs/initrd-a.bin'),
                     ('cmdline@', 'inputs/cmdline.txt'), ('os-release', 'ID=debian\nVERSION_ID=13\n')],
    # A "kernel" that has its own .sbat section and lacks NX_COMPAT (a ukify-built addon, the flag
    # then cleared with pefile): its SBAT entries are merged and the UKI's NX_COMPAT is cleared.
    'sbat-kernel': [('linux@inputs', 'inputs/sbat-kernel.efi'), ('cmdline', 'quiet'),
                    ('sbat', 'sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n'
                             'extra,1,Extra,extra,1,https://example.invalid/\n')],
    # Using the stub as the kernel doubles the stub's SBAT entries; with one more policy line they
    # no longer fit in the stub's .sbat section, and ukify refuses.
    'sbat-too-big': [('linux', 'linuxx64.efi.stub'), ('cmdline', 'quiet'),
                     ('sbat', 'sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n'
                              'nodeimg-test,1,nodeimg,nodeimg,1,https://example.invalid/\n'
                              'nodeimg-test.long,1,nodeimg test vendor with a long name,nodeimg,1,https://example.invalid/\n')],
}


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, cmd, res.stdout, res.stderr)
    return res.stdout


def ukify_args(config):
    args = []
    for opt, value in config:
        if opt == 'linux':
            args += ['--linux', os.path.join(TOOLS, value)]
        elif opt == 'linux@inputs':
            args += ['--linux', os.path.join(HERE, value)]
        elif opt.endswith('@'):
            args += [f'--{opt[:-1]}', '@' + os.path.join(HERE, value)]
        elif opt in ('initrd', 'splash', 'devicetree', 'pcrpkey', 'microcode'):
            args += [f'--{opt}', os.path.join(HERE, value)]
        else:
            args += [f'--{opt}={value}']
    if not any(opt.startswith('os-release') for opt, _ in config):
        args.append('--os-release=')
    return args


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def main():
    for b in BINARIES:
        if not os.path.exists(os.path.join(TOOLS, b)):
            sys.exit(f'{TOOLS}/{b} is missing; run make setup')
    with tempfile.TemporaryDirectory(dir='/tmp') as tmp:
        # The small PE with a .sbat section, made by ukify as an addon (kept as a fixture input).
        addon_stub = os.path.join(ROOT, 'tools/trixie-root/usr/lib/systemd/boot/efi/addonx64.efi.stub')
        kernel = os.path.join(HERE, 'inputs', 'sbat-kernel.efi')
        run([IN_TRIXIE, 'ukify', 'build', '--stub', addon_stub, '--cmdline=addon',
             '--sbat', 'sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n'
                       'linux,1,The Linux Developers,linux,6.12,https://linux.org/\n', '--output', kernel])
        run([IN_TRIXIE, 'python3', '-c', 'import pefile, sys; pe = pefile.PE(sys.argv[1]); '
             'pe.OPTIONAL_HEADER.DllCharacteristics &= ~0x100; pe.write(sys.argv[1])', kernel])

        ukis = {}
        for name, config in CONFIGS.items():
            out = os.path.join(tmp, f'{name}.efi')
            cmd = [IN_TRIXIE, 'ukify', 'build', '--stub', os.path.join(TOOLS, 'linuxx64.efi.stub'),
                   *ukify_args(config), '--output', out]
            entry = {'config': [list(c) for c in config]}
            try:
                run(cmd, cwd=tmp)
            except subprocess.CalledProcessError as e:
                entry['error'] = e.stderr.strip().splitlines()[-1]
            ukis[name] = entry
        built = [os.path.join(tmp, f'{n}.efi') for n, e in ukis.items() if 'error' not in e]
        pe = json.loads(run([IN_TRIXIE, 'python3', os.path.join(HERE, 'oracle_pe.py'), '--measure', *built]))
        binaries = [os.path.join(TOOLS, b) for b in BINARIES]
        pe.update(json.loads(run([IN_TRIXIE, 'python3', os.path.join(HERE, 'oracle_pe.py'), *binaries])))
        auth = json.loads(run([VENV_PY, os.path.join(HERE, 'oracle_authenticode.py'), *built, *binaries]))
        for name, entry in ukis.items():
            if 'error' in entry:
                continue
            f = os.path.join(tmp, f'{name}.efi')
            entry.update(pe[f])
            entry['authenticode'] = auth[f]
            entry['ukify_inspect'] = json.loads(run([IN_TRIXIE, 'ukify', '--json=short', 'inspect', f]))
        result = {'binaries': {}, 'ukis': ukis}
        for b, f in zip(BINARIES, binaries):
            result['binaries'][b] = dict(pe[f], authenticode=auth[f])
    with open(os.path.join(HERE, 'debian.json'), 'w') as f:
        json.dump(result, f, indent=1)
        f.write('\n')


main()
