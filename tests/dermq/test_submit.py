"""`dermq submit` against the running service: one job per image, reports and a summary written."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import SAMPLE_IMAGES

pytestmark = pytest.mark.slow


def test_submit_a_folder(service, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in SAMPLE_IMAGES[:3]:
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "dermq.cli", "submit", str(folder), "--out", str(out), "--url", service.url,
           "--username", service.username, "--password", service.password, "--batch-size", "2"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    reports = sorted(out.glob("*.json"))
    assert [r.stem for r in reports] == sorted(p.stem for p in SAMPLE_IMAGES[:3])
    assert json.loads(reports[0].read_text())["resourceType"] == "DiagnosticReport"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 3 and all(r["status"] == "succeeded" for r in rows)


def test_submit_no_wait_prints_batch_ids(service, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "dermq.cli", "submit", str(SAMPLE_IMAGES[0]), "--no-wait", "--url", service.url,
           "--username", service.username, "--password", service.password]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout.split()
    assert len(out) == 1 and len(out[0]) == 36
