"""Schemathesis against the running service's own /openapi.json: generated requests, valid and not,
for every operation. No answer may be a server error, and every answer must be documented: its
status code declared for the operation, its body valid against the declared schema.

The operations are walked here with Hypothesis rather than through `schema.parametrize()`:
schemathesis' pytest loader for a schema that comes from a fixture (the service only runs once
the fixtures have started it) reads a node attribute pytest 9 no longer has.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from support import Service

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Per operation and mode: about 20 operations × 2 modes stay well under a minute and a half on two cores.
MAX_EXAMPLES = 25
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def test_every_answer_is_documented_and_none_is_a_server_error(service: Service) -> None:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    auth = {"Authorization": f"Bearer {service.token()}"}
    failures: dict[str, str] = {}
    calls: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                calls.append(case.call_and_validate(headers=auth, checks=CHECKS).status_code)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
                # Nothing in this operation can be made invalid (GET /healthz takes no input).
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried, all failures reported
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    print(f"{len(calls)} generated requests over {len(operations)} operations; statuses {sorted(set(calls))}")
    assert len(calls) >= 5 * len(operations), "the fuzzer sent almost nothing"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
