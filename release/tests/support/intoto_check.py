"""Checks an in-toto Statement (stdin, JSON) with the in-toto attestation Python bindings (PyPI
in-toto-attestation, installed into .venv by `make setup`).

Usage: intoto_check.py statement|provenance|slsa
  statement   the document is a Statement: strict protobuf parse + Statement.validate()
  provenance  the document is an SLSA Provenance v1 predicate: strict protobuf parse + required fields
  slsa        both: a Statement whose predicate is SLSA Provenance v1
Prints "ok" or raises.
"""
import json
import sys

from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement


def check_statement(doc):
    pb = json_format.ParseDict(doc, statement_pb2.Statement())  # unknown fields are errors
    Statement.copy_from_pb(pb).validate()


def check_provenance(doc):
    pb = json_format.ParseDict(doc, provenance_pb2.Provenance())  # unknown fields are errors
    # SLSA Build L1 required fields (spec/build-provenance.md).
    if not pb.build_definition.build_type:
        raise ValueError("buildDefinition.buildType is required")
    if not pb.build_definition.HasField("external_parameters"):
        raise ValueError("buildDefinition.externalParameters is required")
    if not pb.run_details.builder.id:
        raise ValueError("runDetails.builder.id is required")
    for rd in list(pb.build_definition.resolved_dependencies) + list(pb.run_details.byproducts):
        ResourceDescriptor.copy_from_pb(rd).validate()


mode = sys.argv[1]
doc = json.load(sys.stdin)
if mode in ("statement", "slsa"):
    check_statement(doc)
if mode == "provenance":
    check_provenance(doc)
if mode == "slsa":
    if doc["predicateType"] != "https://slsa.dev/provenance/v1":
        raise ValueError("predicateType is not SLSA Provenance v1")
    check_provenance(doc["predicate"])
print("ok")
