"""`dermq bench polling` with tiny parameters against the running test service."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dermq.cli import main

pytestmark = pytest.mark.slow


def test_bench_polling_reports_both_load_shapes(service) -> None:
    args = ["bench", "polling", "--url", service.url, "--username", service.username, "--password", service.password,
            "--pollers", "5", "--jobs", "2", "--duration", "2"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    paced, closed = json.loads(result.stdout)
    assert (paced["mode"], closed["mode"]) == ("paced", "closed")
    for figures in (paced, closed):
        assert figures["pollers"] == 5 and figures["errors"] == 0 and figures["count"] > 0, figures
        assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"], figures
    # Paced pollers wait about a second between polls; closed-loop ones ask again at once.
    assert paced["count"] <= 5 * 4 < closed["count"], (paced, closed)

    table = CliRunner().invoke(main, [*args, "--mode", "paced", "--duration", "1"])
    assert table.exit_code == 0, table.output
    assert "paced" in table.output and "p99 ms" in table.output and "closed" not in table.output, table.output
