"""Every scenario of the reference client's own live test suite, replayed against dermq over HTTP.

The reference SDK (a PHP client of the reference dermatology API) ships a suite that runs against the
live API. `reference_client/` holds its scenarios as data, a port of its response parser's strictness
and a recorder of every check. A test here fails when any CONTRACT check of its scenario fails, or the
ported parser throws or warns (the reference suite fails on warnings). Checks of values the AI estimates
on our stand-in photos (clinical), of the vendor's identity and of the places where dermq's own spec
overrides the reference suite (spec-deviation) are recorded and counted apart but never fail a test.

Set DERMQ_CONTRACT_REPORT=/path/contract-report.json to get the tally (counts per category, failing
checks) written at the end of the session. The same tally against any running dermq:
`python -m tests.api.reference_client --base-url URL --username U --password P`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_client.checks import Checks  # noqa: E402
from reference_client.runner import Runner, client_for  # noqa: E402
from reference_client.scenarios import ALL, Scenario  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def contract_checks() -> Iterator[Checks]:
    checks = Checks()
    yield checks
    target = os.environ.get("DERMQ_CONTRACT_REPORT")
    if target:
        checks.write(target)


@pytest.fixture(scope="session")
def reference_runner(service, contract_checks: Checks) -> Iterator[Runner]:
    with client_for(service.url) as http:
        yield Runner(http, service.username, service.password, contract_checks)


@pytest.mark.parametrize("scenario", ALL, ids=[s.name for s in ALL])
def test_reference_scenario(scenario: Scenario, reference_runner: Runner) -> None:
    reference_runner.run(scenario)
    failed = reference_runner.checks.failures(scenario.name)
    recorded = reference_runner.checks.of(scenario.name)
    assert recorded, "the scenario recorded no checks"
    assert not failed, f"{len(failed)} of {sum(c.category == 'contract' for c in recorded)} contract checks failed:\n" + \
        "\n".join(f"- {c.description}: {c.detail}" for c in failed)


def test_contract_report(contract_checks: Checks, tmp_path: Path) -> None:
    """Runs last in this module: the tally so far is well formed and (if asked) written out."""
    target = os.environ.get("DERMQ_CONTRACT_REPORT") or tmp_path / "contract-report.json"
    contract_checks.write(target)
    report = Path(target).read_text()
    assert '"tally"' in report
    print("\n".join(contract_checks.summary_lines()))
