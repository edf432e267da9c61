"""`dermq submit`: send a folder of images, one job each, in batch calls; poll with a progress bar.

Resumable: the output folder keeps a small state file (image name → sha256, job, status, report).
A rerun skips images whose report is written, polls jobs submitted but not yet fetched, and
submits the rest (a changed file or changed options count as new). The state is rewritten
atomically before and after each batch call and after each report, so an interruption at
any point loses at most the batch in flight, and even that is found again (see `_recover`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import click
import httpx
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from core.fileio import atomic_write
from dermq.http_client import (
    DermqClient,
    DermqError,
    diagnosis_body,
    find_named_images,
    local_severity_body,
)

STATE_FILE = ".dermq-submit.json"
SUMMARY_COLUMNS = ("image", "job_id", "status", "top_code", "top_display", "probability", "score", "category",
                   "quality", "error", "report")
KINDS = ("diagnosis-support", "severity-assessment/automatic/local")
REFERENCE_MAX = 200  # the API's limit on a batch item's reference
PENDING = ("queued", "running")
# A job's createdAt may trail the client's clock by this much when an interrupted batch call is looked up.
CLOCK_SLACK_S = 120.0


class Entry(BaseModel):
    """What this output folder knows about one image."""

    sha256: str
    request: str  # fingerprint of the analysis options: changing them resubmits
    url: str
    status: Literal["sending", "queued", "running", "succeeded", "failed", "cancelled", "rejected"]
    sent_at: float | None = None  # when its batch call started (epoch seconds)
    job_id: str | None = None
    batch_id: str | None = None
    report: str | None = None  # relative to the output folder
    error: str | None = None
    summary: dict[str, str] = Field(default_factory=dict)


class State(BaseModel):
    version: Literal[1] = 1
    images: dict[str, Entry] = Field(default_factory=dict)


class Run:
    """One invocation: the state file (None without --out) and the entries of this run's images."""

    def __init__(self, out_dir: Path | None):
        self.path = out_dir / STATE_FILE if out_dir is not None else None
        self.state = State()
        if self.path is not None and self.path.exists():
            try:
                self.state = State.model_validate_json(self.path.read_bytes())
            except ValidationError as exc:
                raise click.ClickException(f"{self.path} is not a dermq submit state file ({exc.error_count()} "
                                           "problems); delete it to start over") from None

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, self.state.model_dump_json(indent=1).encode())


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Where reports, summary.csv and summary.json go; rerunning with the same --out resumes.")
@click.option("--url", default=lambda: os.environ.get("DERMQ_URL", "http://127.0.0.1:8000"), show_default="DERMQ_URL or http://127.0.0.1:8000")
@click.option("--username", envvar="DERMQ_USERNAME")
@click.option("--password", envvar="DERMQ_PASSWORD")
@click.option("--token", envvar="DERMQ_TOKEN")
@click.option("--kind", type=click.Choice(KINDS), default=KINDS[0], show_default=True,
              help="The analysis of each image.")
@click.option("--system", help="Severity: the automatic scoring system (apasi, aeasi, ascorad ...; "
              "GET /questionnaires).")
@click.option("--body-site", help="Severity: the body site every image shows (armLeft, trunkFront ...; "
              "GET /body-sites).")
@click.option("--condition", help="Severity: the known condition (text, e.g. psoriasis); default: the one the "
              "system scores, where it scores one.")
@click.option("--question", "questions", multiple=True, metavar="KEY=VALUE",
              help="Severity: a clinical input of the system (e.g. surface=30); repeat for each.")
@click.option("--inputs", "inputs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Severity: a JSON object of clinical inputs; --question values override it.")
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1), help="Images per batch call.")
@click.option("--timeout", "timeout_s", default=3600.0, show_default=True, type=float,
              help="Seconds to wait for the jobs.")
@click.option("--wait/--no-wait", default=True, help="--no-wait prints the batch ids and returns (with --out, a later "
              "run with the same --out fetches the reports).")
def submit(paths: tuple[Path, ...], out_dir: Path | None, url: str, username: str | None, password: str | None,
           token: str | None, kind: str, system: str | None, body_site: str | None, condition: str | None,
           questions: tuple[str, ...], inputs_file: Path | None, batch_size: int, timeout_s: float,
           wait: bool) -> None:
    """Analyse every image under PATHS, one job per image (diagnosis support by default)."""
    images = find_named_images(list(paths))
    if not images:
        raise click.ClickException("no JPEG, PNG or WebP images found")
    names = [name for _, name in images]
    if len(set(names)) != len(names):
        twice = sorted(n for n, count in Counter(names).items() if count > 1)
        raise click.ClickException(f"two images are named {twice[0]} (relative to their folders); give one folder "
                                   "per run or rename them")
    if wait and out_dir is None:
        raise click.ClickException("--out is required unless --no-wait")
    make_body, options = _request_maker(kind, system, body_site, condition, questions, inputs_file)
    fingerprint = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
    run = Run(out_dir)
    by_name = {name: path for path, name in images}
    report_paths = _report_paths(names)

    try:
        client = DermqClient(url, username=username, password=password, token=token)
    except (ValueError, DermqError) as exc:
        raise click.ClickException(str(exc)) from None
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach dermq at {url}: {exc}") from None

    to_send, in_doubt = [], []
    for path, name in images:
        sha = _sha256(path)
        old = run.state.images.get(name)
        same = old is not None and old.sha256 == sha and old.request == fingerprint
        written = out_dir is not None and old is not None and old.report and (out_dir / old.report).exists()
        if same and old.status == "succeeded" and written:
            continue
        if same and old.url == url and old.status in PENDING and old.job_id:
            continue
        if same and old.url == url and old.status == "sending":
            in_doubt.append(name)
            continue
        run.state.images[name] = Entry(sha256=sha, request=fingerprint, url=url, status="sending")
        to_send.append(name)
    skipped = sum(1 for n in names if run.state.images.get(n) and run.state.images[n].status == "succeeded")
    resumed = sum(1 for n in names if run.state.images[n].status in PENDING) + len(in_doubt)
    if skipped or resumed:
        click.echo(f"resuming: {skipped} reports already written, {resumed} jobs to poll, {len(to_send)} to submit",
                   err=True)

    try:
        if in_doubt:
            to_send += _recover(client, run, in_doubt)
        new_batches = _send(client, run, to_send, by_name, make_body, kind, batch_size)
        if not wait:
            for batch_id in new_batches:
                click.echo(batch_id)
            return
        _poll(client, run, names, out_dir, report_paths, kind, options.get("system"), timeout_s)
    except KeyboardInterrupt:
        done = sum(1 for n in names if run.state.images[n].status == "succeeded")
        raise click.ClickException(f"interrupted with {done} of {len(names)} reports written; run the same command "
                                   "again to resume") from None
    except httpx.TransportError as exc:
        raise click.ClickException(f"lost dermq at {url} ({exc}); what is done is kept, run the same command "
                                   "again to resume") from None
    except (DermqError, httpx.HTTPError, TimeoutError) as exc:
        raise click.ClickException(f"{exc}; what is done is kept, run the same command again to resume") from None
    finally:
        client.http.close()
    _summary(out_dir, [_row(name, run.state.images[name]) for name in names])


# --- requests ---
def _request_maker(kind: str, system: str | None, body_site: str | None, condition: str | None,
                   questions: tuple[str, ...], inputs_file: Path | None):
    """(image → request body, the options that define the request), checked before anything is sent."""
    severity_flags = {"--system": system, "--body-site": body_site, "--condition": condition,
                      "--question": questions or None, "--inputs": inputs_file}
    if kind == "diagnosis-support":
        given = [flag for flag, value in severity_flags.items() if value]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --kind severity-assessment/automatic/local")
        return diagnosis_body, {"kind": kind}
    system, body_site, condition, inputs = _severity_options(system, body_site, condition, questions, inputs_file)
    options = {"kind": kind, "system": system, "bodySite": body_site, "condition": condition, "inputs": inputs}

    def make(image: Path) -> dict[str, Any]:
        return local_severity_body(image, system=system, body_site=body_site, condition=condition, inputs=inputs)

    return make, options


def _severity_options(system: str | None, body_site: str | None, condition: str | None, questions: tuple[str, ...],
                      inputs_file: Path | None) -> tuple[str, str, str, dict[str, Any]]:
    """The scoring system, body site, condition and clinical inputs, with every problem named at once.

    Checked here against the same catalogue the API uses, so a run of a thousand images does not
    end as a thousand identical rejections."""
    from pipeline.catalogue import load_catalogue
    from pipeline.severity.body_sites import BODY_SITES
    from pipeline.severity.systems import SYSTEMS

    automatic = sorted(code for code, s in SYSTEMS.items() if s.automatic)
    if not system:
        raise click.UsageError("--kind severity-assessment/automatic/local needs --system, one of: "
                               + ", ".join(automatic))
    scoring = SYSTEMS.get(system)
    if scoring is None or not scoring.automatic:
        what = "is a questionnaire (POST /severity-assessment/manual)" if scoring else "is not a scoring system"
        raise click.UsageError(f"--system {system} {what}; automatic systems: {', '.join(automatic)}")

    inputs: dict[str, Any] = {}
    if inputs_file is not None:
        try:
            inputs = json.loads(inputs_file.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"--inputs {inputs_file}: not JSON ({exc})") from None
        if not isinstance(inputs, dict):
            raise click.UsageError(f"--inputs {inputs_file}: expected a JSON object of clinical inputs")
    for question in questions:
        key, sep, value = question.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--question {question!r}: expected KEY=VALUE, e.g. surface=30")
        inputs[key.strip()] = _answer(value.strip())

    problems = []
    allowed = sorted(s for s in BODY_SITES if scoring.allows_site(s))
    if not body_site:
        problems.append(f"--body-site is required; {system} scores: {', '.join(allowed)}")
    elif not scoring.allows_site(body_site):
        why = "cannot be scored with " + system if body_site in BODY_SITES else "is not a body site"
        problems.append(f"--body-site {body_site} {why}; {system} scores: {', '.join(allowed)}")
    clinical = {item.code: item for item in scoring.clinician_items()}
    for code in inputs:
        if code not in clinical:
            problems.append(f"{code!r} is not a clinical input of {system}"
                            + (f" (inputs: {', '.join(clinical)})" if clinical else " (it takes none)"))
    for item in clinical.values():
        if item.code not in inputs and not item.optional:
            problems.append(f"{system} needs --question {item.code}=VALUE: {item.text} "
                            f"({item.kind}, {item.minimum:g}-{item.maximum:g})")
    if condition is None:
        if len(scoring.pathologies) == 1:
            condition = load_catalogue().get(scoring.pathologies[0]).display
        else:
            catalogue = load_catalogue()
            choices = ", ".join(f"{catalogue.get(c).display} ({c})" for c in scoring.pathologies) or "any, by name"
            problems.append(f"--condition is required for {system}; it scores: {choices}")
    if problems:
        raise click.UsageError("\n  ".join(["the severity request is incomplete:", *problems]))
    return system, body_site, condition, inputs


def _answer(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value  # yes/no and the like: the API reads them
    return int(number) if number.is_integer() and "." not in value else number


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reference(name: str) -> str:
    return name if len(name) <= REFERENCE_MAX else name[-REFERENCE_MAX:]


# --- submission ---
def _send(client: DermqClient, run: Run, names: list[str], by_name: dict[str, Path], make_body, kind: str,
          batch_size: int) -> list[str]:
    """Submit `names` in batch calls; each entry is marked `sending` (with the time) before its call and
    updated from the answer after it, both written to disk."""
    batch_ids = []
    for start in range(0, len(names), batch_size):
        chunk = names[start : start + batch_size]
        now = time.time()
        for name in chunk:
            run.state.images[name].status, run.state.images[name].sent_at = "sending", now
        run.save()
        items = [{"kind": kind, "body": make_body(by_name[n]), "reference": _reference(n)} for n in chunk]
        try:
            reply = client.create_batch(items)
        except DermqError as exc:
            if exc.status != 422 or not isinstance(exc.body, dict):
                raise
            reply = {"id": None, "jobs": [], "rejected": _rejected_from_422(exc.body, len(chunk))}
        for job in reply["jobs"]:  # "queued" here means submitted, not yet fetched: polling finds its real status
            entry = run.state.images[chunk[job["index"]]]
            entry.status, entry.job_id, entry.batch_id = "queued", job["id"], reply["id"]
        for rejection in reply["rejected"]:
            entry = run.state.images[chunk[rejection["index"]]]
            entry.status, entry.error = "rejected", "; ".join(d["msg"] for d in rejection["detail"])
        run.save()
        if reply["id"]:
            batch_ids.append(reply["id"])
    return batch_ids


def _rejected_from_422(body: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Every item of the batch was rejected: the 422's items, grouped by the item index in their loc."""
    by_index: dict[int, list[dict[str, Any]]] = {i: [] for i in range(count)}
    for detail in body.get("detail") or []:
        loc = detail.get("loc") or []
        index = loc[2] if len(loc) > 2 and loc[:2] == ["body", "items"] and isinstance(loc[2], int) else None
        for i in ([index] if index in by_index else by_index):
            by_index[i].append(detail)
    return [{"index": i, "detail": d or [{"msg": "rejected"}]} for i, d in by_index.items()]


def _recover(client: DermqClient, run: Run, names: list[str]) -> list[str]:
    """Images whose batch call was interrupted: the server may have created their jobs anyway. Look for
    them among the newest jobs (by reference, created since the call began); the rest are sent again."""
    wanted = {_reference(n): n for n in names}
    since = min(run.state.images[n].sent_at or 0 for n in names) - CLOCK_SLACK_S
    offset = 0
    while wanted:
        page = client.jobs(offset=offset, limit=500)
        for job in page["items"]:
            name = wanted.get(job.get("reference") or "")
            if name is not None and job.get("batchId") and _epoch(job["createdAt"]) >= since:
                entry = run.state.images[name]
                entry.status, entry.job_id, entry.batch_id = "queued", job["id"], job["batchId"]
                del wanted[_reference(name)]
        offset += len(page["items"])
        oldest = page["items"][-1]["createdAt"] if page["items"] else None
        if oldest is None or _epoch(oldest) < since or offset >= page["total"]:
            break
    run.save()
    return list(wanted.values())


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- polling and reports ---
def _poll(client: DermqClient, run: Run, names: list[str], out_dir: Path, report_paths: dict[str, str], kind: str,
          system: str | None, timeout_s: float) -> None:
    """Poll the batches of pending jobs; write each report (and the state) as soon as its job is done."""
    entries = run.state.images
    pending = {entries[n].job_id: n for n in names if entries[n].status in PENDING}
    total = sum(1 for n in names if entries[n].status != "rejected")
    deadline = time.monotonic() + timeout_s
    with tqdm(total=total, initial=total - len(pending), unit="img", desc="analysing") as bar:
        while pending:
            for batch_id in sorted({entries[n].batch_id for n in pending.values()}):
                try:
                    jobs = client.batch(batch_id)["jobs"]
                except DermqError as exc:
                    if exc.status != 404:
                        raise
                    jobs = [{"id": j, "status": "failed", "error": "the server no longer knows this job; rerun to "
                             "submit it again"} for j, n in pending.items() if entries[n].batch_id == batch_id]
                for job in jobs:
                    name = pending.get(job["id"])
                    if name is None or job["status"] in PENDING:
                        continue
                    entry = entries[name]
                    entry.status, entry.error = job["status"], job.get("error")
                    if entry.status == "succeeded":
                        report = client.job_result(job["id"])
                        target = out_dir / report_paths[name]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        atomic_write(target, json.dumps(report, indent=1).encode())
                        entry.report, entry.summary = report_paths[name], _report_summary(report, kind, system)
                    run.save()
                    del pending[job["id"]]
                    bar.update(1)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(pending)} jobs did not finish within {timeout_s:.0f} s")
                time.sleep(0.5)


def _report_paths(names: list[str]) -> dict[str, str]:
    """`<name without suffix>.json` beside its folder's other reports; `<name>.json` where that would clash
    (a.jpg and a.png, or an image called summary)."""
    plain = {n: Path(n).with_suffix(".json").as_posix() for n in names}
    taken = Counter([*plain.values(), "summary.json", "summary.csv", STATE_FILE])
    return {n: p if taken[p] == 1 else f"{n}.json" for n, p in plain.items()}


def _report_summary(report: dict[str, Any], kind: str, system: str | None) -> dict[str, str]:
    if kind == "diagnosis-support":
        analysis = report["imagingAnalysis"][0]
        validity = analysis["mediaValidity"]
        conclusions = report.get("conclusion") or analysis.get("conclusion") or []
        out = {"quality": _quality(validity)}
        if conclusions:
            top = conclusions[0]
            out |= {"top_code": top["code"]["coding"][0]["code"], "top_display": top["code"]["text"],
                    "probability": f"{top['probability']:.1f}"}
        return out
    score = report["patientEvolution"][system]["score"]
    out = {"score": str(score["value"]), "category": score["interpretation"]["category"]}
    if report.get("mediaValidity"):
        out["quality"] = _quality(report["mediaValidity"])
    return out


def _quality(validity: dict[str, Any]) -> str:
    if validity.get("isValid"):
        return "valid"
    if not (validity.get("domain") or {}).get("isDermatological", True):
        return "invalid: not a skin image"
    return f"invalid: quality {(validity.get('quality') or {}).get('interpretation', 'too low')}"


def _row(name: str, entry: Entry) -> dict[str, str]:
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row |= {"image": name, "job_id": entry.job_id or "", "status": entry.status, "error": entry.error or "",
            "report": entry.report or "", **entry.summary}
    return row


def _summary(out_dir: Path, rows: list[dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out_dir / "summary.csv", text.getvalue().encode())
    atomic_write(out_dir / "summary.json", json.dumps(rows, indent=1).encode())

    # The columns that say something in this run: a diagnosis run has no score, a clean run no error.
    shown = ["image", "status", *(c for c in ("quality", "top_display", "probability", "score", "category", "error")
                                  if any(r[c] for r in rows))]
    table = Table(title=f"{len(rows)} images → {out_dir}")
    widest = max(len(r["image"]) for r in rows)
    for col in shown:  # names fold onto a second line rather than lose their middle to an ellipsis
        table.add_column({"top_display": "top condition", "probability": "%"}.get(col, col), overflow="fold",
                         min_width=min(widest, 48) if col == "image" else None)
    for row in rows:
        table.add_row(*(row[c] for c in shown))
    Console().print(table)
    failed = sum(1 for r in rows if r["status"] != "succeeded")
    click.echo(f"reports, summary.csv and summary.json in {out_dir}" + (f"; {failed} not analysed" if failed else ""))
