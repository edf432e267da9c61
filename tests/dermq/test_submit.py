"""`dermq submit` against the running service: one job per image, reports and summaries written, resumable."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import SAMPLE_IMAGES

pytestmark = pytest.mark.slow
STATE = ".dermq-submit.json"


def submit(service, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dermq.cli", "submit", *args, "--url", service.url,
           "--username", service.username, "--password", service.password]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def jobs_total(api: httpx.Client) -> int:
    return api.get("/jobs", params={"limit": 1}).json()["total"]


def photos(folder: Path, images: list[Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in images:
        shutil.copy(p, folder / p.name)
    return folder


def summary(out: Path) -> tuple[list[dict], list[dict]]:
    return list(csv.DictReader((out / "summary.csv").open())), json.loads((out / "summary.json").read_text())


def test_submit_a_folder(service, api, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", SAMPLE_IMAGES[:2])
    photos(folder / "follow-up", SAMPLE_IMAGES[2:3])
    (folder / "notes.txt").write_text("not an image")
    # In batches of two (names sort capitals first): [ISIC, ISIC], [a-, b-broken] (the whole call is
    # refused), [c-broken, follow-up/ISIC] (one item refused, one taken).
    for name in ("a-broken.jpg", "b-broken.jpg", "c-broken.jpg"):
        (folder / name).write_text("not a JPEG either")
    out = tmp_path / "reports"
    done = submit(service, str(folder), "--out", str(out), "--batch-size", "2")
    names = sorted([p.name for p in SAMPLE_IMAGES[:2]] + [f"follow-up/{SAMPLE_IMAGES[2].name}"])
    for name in names:
        assert name in done.stdout, "the table shows each file name whole"
    csv_rows, json_rows = summary(out)
    assert csv_rows == json_rows, "summary.csv and summary.json say the same"
    assert sorted(r["image"] for r in csv_rows) == sorted([*names, "a-broken.jpg", "b-broken.jpg", "c-broken.jpg"])
    broken = [r for r in csv_rows if "broken" in r["image"]]
    assert all(r["status"] == "rejected" and r["error"] and not r["job_id"] and not r["report"] for r in broken)
    assert "3 not analysed" in done.stdout
    csv_rows = [r for r in csv_rows if r not in broken]
    ids = {job["id"]: job for job in api.get("/jobs", params={"limit": 500}).json()["items"]}
    for row in csv_rows:
        assert row["status"] == "succeeded" and row["error"] == ""
        assert ids[row["job_id"]]["reference"] == row["image"]
        report = json.loads((out / row["report"]).read_text())
        assert report["resourceType"] == "DiagnosticReport"
        top = report["conclusion"][0] if report.get("conclusion") else report["imagingAnalysis"][0]["conclusion"][0]
        assert row["top_code"] == top["code"]["coding"][0]["code"] and row["top_display"] == top["code"]["text"]
        assert float(row["probability"]) == pytest.approx(top["probability"], abs=0.05)
        valid = report["imagingAnalysis"][0]["mediaValidity"]["isValid"]
        assert (row["quality"] == "valid") == valid
    nested = next(r for r in csv_rows if r["image"].startswith("follow-up/"))
    assert nested["report"] == f"follow-up/{SAMPLE_IMAGES[2].stem}.json"


def test_rerun_submits_only_what_is_not_done(service, api, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", SAMPLE_IMAGES[3:5])
    out = tmp_path / "reports"
    before = jobs_total(api)
    submit(service, str(folder), "--out", str(out), "--no-wait")  # submitted, nothing fetched yet
    assert jobs_total(api) == before + 2 and not (out / "summary.csv").exists()
    # As if the run had been killed during its batch call for one image: the server made its job, the
    # state file never heard of it. The rerun must find that job, not make another.
    state = json.loads((out / STATE).read_text())
    lost = state["images"][SAMPLE_IMAGES[3].name]
    lost_job = lost["job_id"]
    lost.update(status="sending", job_id=None, batch_id=None)
    (out / STATE).write_text(json.dumps(state))

    photos(folder, SAMPLE_IMAGES[5:7])
    done = submit(service, str(folder), "--out", str(out), "--batch-size", "1")
    assert "0 reports already written, 2 jobs to poll, 2 to submit" in done.stderr
    assert jobs_total(api) == before + 4, "only the two new images were submitted"
    rows, _ = summary(out)
    assert sorted(r["image"] for r in rows) == sorted(p.name for p in SAMPLE_IMAGES[3:7])
    assert all(r["status"] == "succeeded" and (out / r["report"]).exists() for r in rows)
    assert next(r for r in rows if r["image"] == SAMPLE_IMAGES[3].name)["job_id"] == lost_job

    again = submit(service, str(folder), "--out", str(out))
    assert "4 reports already written, 0 jobs to poll, 0 to submit" in again.stderr
    assert jobs_total(api) == before + 4
    assert summary(out)[0] == rows

    shutil.copy(SAMPLE_IMAGES[8], folder / SAMPLE_IMAGES[4].name)  # same name, other picture: analysed anew
    submit(service, str(folder), "--out", str(out))
    assert jobs_total(api) == before + 5
    changed = next(r for r in summary(out)[0] if r["image"] == SAMPLE_IMAGES[4].name)
    assert changed["job_id"] != next(r for r in rows if r["image"] == SAMPLE_IMAGES[4].name)["job_id"]


def test_a_killed_run_resumes_without_resubmitting(service, api, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", SAMPLE_IMAGES[9:13])
    out = tmp_path / "reports"
    before = jobs_total(api)
    cmd = [sys.executable, "-m", "dermq.cli", "submit", str(folder), "--out", str(out), "--batch-size", "1",
           "--url", service.url, "--username", service.username, "--password", service.password]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(e["job_id"] for e in json.loads((out / STATE).read_text())["images"].values()):
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not (out / "summary.csv").exists(), "killed before it finished"

    submit(service, str(folder), "--out", str(out))
    assert jobs_total(api) == before + 4, "each image was submitted once across both runs"
    rows, _ = summary(out)
    assert len(rows) == 4 and all(r["status"] == "succeeded" for r in rows)
    assert len({r["job_id"] for r in rows}) == 4


def test_local_severity_for_a_folder(service, api, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", SAMPLE_IMAGES[13:15])
    out = tmp_path / "reports"
    before = jobs_total(api)
    base = [str(folder), "--out", str(out), "--kind", "severity-assessment/automatic/local", "--system", "apasi",
            "--body-site", "armLeft"]
    missing = submit(service, *base, check=False)
    assert missing.returncode == 2 and "apasi needs --question surface=VALUE" in missing.stderr
    wrong = submit(service, *base[:-1], "nose", "--question", "surface=30", "--question", "age=40", check=False)
    assert wrong.returncode == 2
    assert "--body-site nose is not a body site" in wrong.stderr and "'age' is not a clinical input" in wrong.stderr
    assert jobs_total(api) == before, "nothing is sent for an incomplete request"

    (tmp_path / "inputs.json").write_text(json.dumps({"surface": 10}))
    done = submit(service, *base, "--inputs", str(tmp_path / "inputs.json"), "--question", "surface=30")
    assert jobs_total(api) == before + 2
    rows, _ = summary(out)
    assert {r["image"] for r in rows} == {p.name for p in SAMPLE_IMAGES[13:15]}
    for row in rows:
        assert row["status"] == "succeeded" and row["top_code"] == ""
        report = json.loads((out / row["report"]).read_text())
        apasi = report["patientEvolution"]["apasi"]
        assert apasi["item"]["surface"]["value"] == 3, "--question overrides --inputs: 30 % is area score 3"
        assert float(row["score"]) == apasi["score"]["value"]
        assert row["category"] == apasi["score"]["interpretation"]["category"] and row["category"] in done.stdout
        assert (row["quality"] == "valid") == report["mediaValidity"]["isValid"]


def test_submit_no_wait_prints_batch_ids(service, tmp_path: Path) -> None:
    out = submit(service, str(SAMPLE_IMAGES[0]), "--no-wait", timeout=120).stdout.split()
    assert len(out) == 1 and len(out[0]) == 36
