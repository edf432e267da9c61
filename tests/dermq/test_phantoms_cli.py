"""`dermq phantoms`: writes a balanced dataset, rejects unknown classes."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from dermq.cli.phantoms import phantoms


def test_phantoms_command_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(phantoms, ["--out", str(out), "--count", "4", "--size", "48", "--seed", "3",
                                           "--classes", "EA90, ED80"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert sorted(r["code"] for r in rows) == ["EA90", "EA90", "ED80", "ED80"]
    assert all((out / r["image"]).is_file() and (out / r["mask"]).is_file() for r in rows)


def test_phantoms_command_rejects_unknown_class(tmp_path: Path) -> None:
    result = CliRunner().invoke(phantoms, ["--out", str(tmp_path), "--classes", "2F20,NOPE"])
    assert result.exit_code == 2 and "NOPE" in result.output
    assert not (tmp_path / "labels.csv").exists()


def test_phantoms_command_needs_an_output_folder() -> None:
    assert CliRunner().invoke(phantoms, ["--count", "1"]).exit_code == 2
