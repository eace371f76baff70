#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR MIT
"""Drives Keylime's own verifier code (keylime 7.14.3, from PyPI) for tests/keylime_cli.rs.

Each subcommand runs the functions Keylime's verifier and tenant run, offline, with a
verifier.conf that installs nodeimg's policy module as docs/verifying-keylime.md says
(`measured_boot_imports = ["nodeimg_uki"]`, `measured_boot_policy_name = nodeimg-uki`), and prints
one JSON object: {"accepted": bool, "failures": [{"id": ..., "context": ...}, ...], ...}.
Exit status: 0 accepted, 1 rejected, 2 unusable input or setup.

  mb LOG REFSTATE
      The measured-boot path of the verifier's Tpm.check_pcrs: mba.bootlog_parse (tpm2_eventlog
      and Keylime's enrichment) then mba.bootlog_evaluate (the configured policy on the refstate).
  quote --ak AK.pub --message M --signature S --pcrs P --nonce N --tpm-policy FILE
        [--refstate FILE --log LOG] [--hash sha256]
      Tpm().check_quote, as the verifier calls it for an agent's quote (tpm2_quote's message,
      signature and PCR files, the AK's TPM2B_PUBLIC), with the tpm_policy as the tenant's
      cli.policies.process_policy turns `--tpm_policy JSON --mb-policy-name NAME` into the stored
      policy, and the event log and refstate as measured boot evidence and reference.
  tenant --tpm-policy FILE [--mb-policy FILE] [--mb-policy-name NAME]
      The tenant's cli.policies.process_policy on those options: accepted, or Keylime's refusal.
  example LOG
      What Keylime offers without nodeimg: the refstate `keylime-policy create measured-boot`
      makes from LOG (its function create_mb_refstate), evaluated as in `mb` by Keylime's shipped
      policy `example` instead of nodeimg-uki.
"""

import argparse
import base64
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


_SCRATCH = []


def _scratch() -> str:
    """A directory removed when the process exits."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="keylime-check-"))
    return _SCRATCH[0].name


def _configure(policy_dir: str, policy_name: str) -> None:
    """A verifier.conf naming the policy, with nodeimg_uki on the import path."""
    conf = os.path.join(_scratch(), "verifier.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(
            "[verifier]\n"
            'measured_boot_imports = ["nodeimg_uki"]\n'
            f"measured_boot_policy_name = {policy_name}\n"
            "measured_boot_evaluate = always\n"
        )
    os.environ["KEYLIME_VERIFIER_CONFIG"] = conf
    sys.path.insert(0, policy_dir)


def _failures(failure) -> list:  # type: ignore[no-untyped-def]
    out = []
    for e in failure.events:
        context = json.loads(e.context)
        if isinstance(context, dict):
            context.pop("refstate", None)  # Keylime repeats the whole refstate in its reason
        out.append({"id": e.event_id, "context": context})
    return out


def _emit(accepted: bool, **extra) -> int:  # type: ignore[no-untyped-def]
    print(json.dumps({"accepted": accepted, **extra}, indent=1, sort_keys=True))
    return 0 if accepted else 1


def cmd_mb(a: argparse.Namespace) -> int:
    with open(a.refstate, encoding="utf-8") as f:
        refstate = f.read()
    return _evaluate(a.log, refstate, a.hash)


def _evaluate(log: str, refstate: str, hash_alg: str) -> int:
    from keylime import config
    from keylime.mba import mba

    mba.load_imports()
    with open(log, "rb") as f:
        log_b64 = base64.b64encode(f.read()).decode()
    # What the tenant stores (mba.policy_load: the JSON re-serialised) and the verifier checks.
    refstate = json.dumps(json.loads(refstate))
    if not mba.policy_is_valid(refstate):
        print("the refstate is not a valid measured boot policy", file=sys.stderr)
        return 2
    _, _, data, parse_failure = mba.bootlog_parse(log_b64, hash_alg)
    if parse_failure:
        return _emit(False, stage="bootlog_parse", failures=_failures(parse_failure))
    failure = mba.bootlog_evaluate(refstate, data, set(config.MEASUREDBOOT_PCRS), "nodeimg-test")
    return _emit(not failure, stage="bootlog_evaluate", failures=_failures(failure))


def cmd_example(a: argparse.Namespace) -> int:
    from keylime.mba import mba
    from keylime.policy import create_mb_policy

    mba.load_imports()
    out = os.path.join(_scratch(), "example-refstate.json")
    for without_secureboot in (False, True):
        # The tool refuses a log without Secure Boot unless told (-i); a log with it, never.
        args = argparse.Namespace(eventlog_file=a.log, without_secureboot=without_secureboot, output=out)
        if create_mb_policy.create_mb_refstate(args) is not None:
            break
    else:
        print("keylime-policy create measured-boot made no refstate from the log", file=sys.stderr)
        return 2
    with open(out, encoding="utf-8") as f:
        return _evaluate(a.log, f.read(), "sha256")


def _process_policy(tpm_policy: str, mb_policy, mb_policy_name):  # type: ignore[no-untyped-def]
    from keylime.cli import policies

    args = {
        "tpm_policy": tpm_policy,
        "ima_sign_verification_keys": [],
        "mb_policy": mb_policy,
        "mb_policy_name": mb_policy_name,
    }
    return policies.process_policy(args)  # type: ignore[arg-type]


def cmd_tenant(a: argparse.Namespace) -> int:
    from keylime.mba import mba

    mba.load_imports()
    with open(a.tpm_policy, encoding="utf-8") as f:
        tpm_policy = f.read()
    # process_policy logs its refusal (on stderr) and calls sys.exit(1): report a rejection.
    try:
        tpm_policy_dict, mb_policy, mb_policy_name, *_ = _process_policy(tpm_policy, a.mb_policy, a.mb_policy_name)
    except SystemExit as e:
        return _emit(False, exit=e.code)
    return _emit(
        True,
        tpm_policy=tpm_policy_dict,
        mb_policy_loaded=mb_policy is not None,
        mb_policy_name=mb_policy_name,
    )


def cmd_quote(a: argparse.Namespace) -> int:
    from keylime.common.algorithms import Hash
    from keylime.mba import mba
    from keylime.tpm.tpm_main import Tpm

    mba.load_imports()

    def b64(path: str) -> str:
        with open(path, "rb") as f:
            return base64.b64encode(f.read()).decode()

    quote = "r" + ":".join([b64(a.message), b64(a.signature), b64(a.pcrs)])
    with open(a.tpm_policy, encoding="utf-8") as f:
        tpm_policy_json = f.read()
    refstate = None
    if a.refstate:
        with open(a.refstate, encoding="utf-8") as f:
            refstate = json.dumps(json.loads(f.read()))
    # The tenant: --tpm_policy "$(cat tpm_policy.json)" --mb-policy-name NAME (a refstate stored
    # with `keylime_tenant -c addmbpolicy`): the agent's stored tpm_policy, mask included.
    tpm_policy, *_ = _process_policy(tpm_policy_json, None, "nodeimg-release" if refstate else None)
    log = None
    if a.log:
        with open(a.log, "rb") as f:
            log = f.read()
    failure = Tpm().check_quote(
        None,  # no agent state: the clock check needs earlier quotes
        a.nonce,
        None,  # no data bound to PCR 16
        quote,
        b64(a.ak),
        tpm_policy,
        hash_alg=Hash(a.hash),
        mb_measurement_list=log,
        mb_policy=refstate,
        mb_policy_name="nodeimg-uki",
        count=0,
    )
    return _emit(not failure, tpm_policy_mask=tpm_policy["mask"], failures=_failures(failure))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy-dir", required=True, help="the directory holding nodeimg_uki.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    mb = sub.add_parser("mb")
    mb.add_argument("log")
    mb.add_argument("refstate")
    mb.add_argument("--hash", default="sha256")
    q = sub.add_parser("quote")
    for opt in ["--ak", "--message", "--signature", "--pcrs", "--nonce", "--tpm-policy"]:
        q.add_argument(opt, required=True)
    q.add_argument("--refstate")
    q.add_argument("--log")
    q.add_argument("--hash", default="sha256")
    t = sub.add_parser("tenant")
    t.add_argument("--tpm-policy", required=True)
    t.add_argument("--mb-policy")
    t.add_argument("--mb-policy-name")
    e = sub.add_parser("example")
    e.add_argument("log")
    a = p.parse_args()
    _configure(a.policy_dir, "example" if a.cmd == "example" else "nodeimg-uki")
    try:
        import keylime  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError as e:
        print(f"keylime is not installed in this Python ({e}): run `make setup`", file=sys.stderr)
        return 2
    return {"mb": cmd_mb, "quote": cmd_quote, "tenant": cmd_tenant, "example": cmd_example}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
