# SPDX-License-Identifier: Apache-2.0 OR MIT
"""nodeimg-uki: a Keylime measured-boot policy for nodeimg's UKI boots.

Keylime's verifier evaluates a node's firmware event log (after replaying it against the
quote's PCRs) with the measured-boot policy named by `measured_boot_policy_name` in
verifier.conf, given the reference state ("refstate", `--mb-policy`) registered for the node.
Keylime ships `example`, which expects shim -> grub -> kernel and rejects every boot of a Unified
Kernel Image. This module registers the policy `nodeimg-uki`, written on Keylime's `elchecking`
building blocks (keylime/mba/elchecking/tests.py, policies.py), for the refstate that
`nodeimg export --format keylime` writes from a release's predicted event log:

    {"nodeimg_uki": 1,
     "boots": [{"name": "IMAGE VERSION PLATFORM",
                "pcrs": {"4": [{"type": "EV_EFI_ACTION", "about": "...",
                                "digests": {"sha256": "0x...", "sha384": "0x..."}}, ...],
                         ...}}]}

A log is accepted when it matches one boot of the list: for every PCR that boot lists, the log's
extended events of that PCR (EV_NO_ACTION is never extended) are exactly the listed ones, in
order, each with the listed type and, in every bank the event carries, the listed digest. A
digest of a bank the refstate has no value for is a rejection, not a pass: whichever bank the
agent quotes, its digests are the ones checked. PCRs a boot does not list (the firmware's own
PCRs 0-3 and 6, and those the release does not enforce) are not checked here.

PCRs: `get_relevant_pcrs` tells the verifier which PCRs to compare with the replayed log
(Keylime >= 7.14.3, commit 1c5fe759 "tpm: use only policy's relevant PCRs for event log
verification"). PCR 11 is left out, because systemd-pcrphase extends it after the firmware log
ends (enter-initrd, leave-initrd, sysinit, ready), so on a booted node it never equals the log's
replay. PCR 11's events in the log (systemd-stub's UKI sections) are still checked against the
refstate, which names the section that differs, but nothing binds them to the quote: PCR 11 at
the boot phase the quote is taken is checked by the tpm_policy exported beside the refstate.
PCR 15 is left out too (systemd extends it from userspace: machine-id, file systems).

Install: put this file where the verifier's Python finds it and set, in verifier.conf,
`measured_boot_imports = ["nodeimg_uki"]` and `measured_boot_policy_name = nodeimg-uki`.
"""

import re
import typing

from keylime.mba.elchecking import policies, tests

POLICY_NAME = "nodeimg-uki"
REFSTATE_VERSION = 1

# Keylime's MEASUREDBOOT_PCRS (0-9, 11-15) without 11 (systemd-pcrphase) and 15 (systemd's
# userspace measurements): the PCRs the firmware log accounts for on a UKI boot.
RELEVANT_PCRS = frozenset([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14])
# The PCRs a refstate may list: the relevant ones, and 11 (checked, not bound; see above).
LISTABLE_PCRS = RELEVANT_PCRS | {11}

_HEX = re.compile("0x(?:[0-9a-f]{2})+")
_DIGEST_LENGTHS = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sm3_256": 32}


class EventDigests(tests.Test):
    """Every digest of the event is of a bank the reference has, and equals its value."""

    def __init__(self, digests: typing.Mapping[str, str]):
        super().__init__()
        self.digests = dict(digests)

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, dict):
            return "is not a dict"
        digests = subject.get("Digests")
        if not isinstance(digests, list) or not digests:
            return "has no digests"
        for d in digests:
            if not isinstance(d, dict):
                return f"has a malformed digest {d!r}"
            alg, value = d.get("AlgorithmId"), d.get("Digest")
            if alg not in self.digests:
                return f"has a {alg} digest, a bank the refstate has no values for"
            if value != self.digests[alg]:
                return f"has {alg} digest {value}, not {self.digests[alg]}"
        return ""


class PcrEvents(tests.Test):
    """Applies a test to the log's extended events of one PCR, in log order."""

    def __init__(self, pcr: int, events_test: tests.Test):
        super().__init__()
        self.pcr = pcr
        self.events_test = events_test

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, list):
            return "is not a list"
        events = [
            e
            for e in subject
            if isinstance(e, dict) and e.get("PCRIndex") == self.pcr and e.get("EventType") != "EV_NO_ACTION"
        ]
        reason = self.events_test.why_not(globs, events)
        # TupleTest's reasons start with "[index] " or " is longer/shorter".
        return f"PCR {self.pcr} events{reason}" if reason else ""


class Labelled(tests.Test):
    """A test whose reason for rejection starts with a label (which boot, which event)."""

    def __init__(self, label: str, test: tests.Test):
        super().__init__()
        self.label = label
        self.test = test

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        reason = self.test.why_not(globs, subject)
        return f"{self.label}: {reason}" if reason else ""


def _digests(where: str, digests: typing.Any) -> typing.Dict[str, str]:
    if not isinstance(digests, dict) or not digests:
        raise Exception(f"{where}: digests must be a non-empty object of bank -> 0x-prefixed hex")
    out = {}
    for alg, value in digests.items():
        if alg not in _DIGEST_LENGTHS:
            raise Exception(f"{where}: unknown bank {alg!r}")
        if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 + 2 * _DIGEST_LENGTHS[alg]:
            raise Exception(f"{where}: {alg} digest {value!r} is not 0x and {_DIGEST_LENGTHS[alg]} lowercase hex bytes")
        out[alg] = value[2:]
    return out


def _event_test(where: str, event: typing.Any) -> tests.Test:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Exception(f"{where}: an event must be an object with a type and digests")
    about = event.get("about", "")
    label = event["type"] + (f" {about}" if isinstance(about, str) and about else "")
    return Labelled(
        label,
        tests.And(
            tests.FieldTest("EventType", tests.StringEqual(event["type"])),
            EventDigests(_digests(where, event.get("digests"))),
        ),
    )


def _boot_test(index: int, boot: typing.Any) -> tests.Test:
    if not isinstance(boot, dict) or not isinstance(boot.get("pcrs"), dict) or not boot["pcrs"]:
        raise Exception(f"refstate boots[{index}]: must be an object with a non-empty pcrs object")
    name = boot.get("name", f"boots[{index}]")
    pcr_tests = []
    for key in sorted(boot["pcrs"], key=lambda k: (len(k), k)):
        if not key.isdigit() or int(key) not in LISTABLE_PCRS:
            raise Exception(f"refstate {name}: PCR {key!r} is not one this policy checks ({sorted(LISTABLE_PCRS)})")
        events = boot["pcrs"][key]
        if not isinstance(events, list):
            raise Exception(f"refstate {name}: PCR {key} must list events")
        pcr_tests.append(
            PcrEvents(
                int(key),
                tests.TupleTest(*[_event_test(f"{name} PCR {key} event {i}", e) for i, e in enumerate(events)]),
            )
        )
    return Labelled(str(name), tests.And(*pcr_tests))


class NodeimgUki(policies.Policy):
    """Accepts a UKI boot whose events equal one boot of the refstate, PCR by PCR."""

    def get_relevant_pcrs(self) -> typing.FrozenSet[int]:
        return RELEVANT_PCRS

    def refstate_to_test(self, refstate: policies.RefState) -> tests.Test:
        if not isinstance(refstate, dict) or refstate.get("nodeimg_uki") != REFSTATE_VERSION:
            raise Exception(f'this is not a nodeimg-uki refstate (want {{"nodeimg_uki": {REFSTATE_VERSION}, ...}})')
        boots = refstate.get("boots")
        if not isinstance(boots, list) or not boots:
            raise Exception("refstate: boots must be a non-empty list")
        return tests.FieldTest("events", tests.Or(*[_boot_test(i, b) for i, b in enumerate(boots)]), show_name=False)


policies.register(POLICY_NAME, NodeimgUki())
