"""`dermq bench gate` prints the gate's held-out rates (a small slice here; the tests of the figures
themselves are in tests/training/test_gate_evaluation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermq.cli import main

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED_DATA / "nonskin" / "labels.csv").is_file(), reason=f"needs {SHARED_DATA}")
def test_bench_gate_prints_rates_per_set_and_defect() -> None:
    result = CliRunner().invoke(main, ["bench", "gate", "--data", str(SHARED_DATA), "--limit", "12", "--degraded", "3", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures["sets"]) == {"dermoscopic", "clinical", "nonskin"}
    assert all(s["images"] == 12 for s in figures["sets"].values())
    assert {"gaussian_blur", "noise", "dark", "overexposed"} <= set(figures["degraded"])
    table = CliRunner().invoke(main, ["bench", "gate", "--data", str(SHARED_DATA), "--limit", "6", "--degraded", "1"])
    assert table.exit_code == 0 and "valid + modality" in table.output and "gate head" in table.output, table.output
