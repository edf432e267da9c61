"""`dermq submit`: send a folder of images, one job each, in batch calls; poll with a progress bar."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from dermq.client import DermqClient, diagnosis_body, find_images


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Where reports and summary.csv go.")
@click.option("--url", default=lambda: os.environ.get("DERMQ_URL", "http://127.0.0.1:8000"), show_default="DERMQ_URL or http://127.0.0.1:8000")
@click.option("--username", envvar="DERMQ_USERNAME")
@click.option("--password", envvar="DERMQ_PASSWORD")
@click.option("--token", envvar="DERMQ_TOKEN")
@click.option("--batch-size", default=100, show_default=True, type=int, help="Images per batch call.")
@click.option("--wait/--no-wait", default=True, help="--no-wait prints the batch ids and returns.")
def submit(paths: tuple[Path, ...], out_dir: Path | None, url: str, username: str | None, password: str | None,
           token: str | None, batch_size: int, wait: bool) -> None:
    """Analyse every image under PATHS with POST /diagnosis-support, one job per image."""
    images = find_images(list(paths))
    if not images:
        raise click.ClickException("no JPEG, PNG or WebP images found")
    if wait and out_dir is None:
        raise click.ClickException("--out is required unless --no-wait")
    client = DermqClient(url, username=username, password=password, token=token)
    by_ref = {str(p): p for p in images}
    batch_ids, rejected = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        items = [{"kind": "diagnosis-support", "body": diagnosis_body(p), "reference": str(p)} for p in chunk]
        reply = client.create_batch(items)
        batch_ids.append(reply["id"])
        rejected += reply["rejected"]
    if not wait:
        for batch_id in batch_ids:
            click.echo(batch_id)
        return
    with tqdm(total=len(images) - len(rejected), unit="img", desc="analysing") as bar:
        def progress(done: int) -> None:
            bar.update(done - bar.n)

        client.wait_batches(batch_ids, on_progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for batch_id in batch_ids:
        for line in client.batch_results(batch_id):
            rows.append(_write_report(out_dir, by_ref[line["reference"]], line))
    for r in rejected:
        msg = "; ".join(d["msg"] for d in r["detail"])
        rows.append({"image": r["reference"], "status": "rejected", "top": "", "probability": "", "valid": "", "note": msg})
    _summary(out_dir, rows)


def _write_report(out_dir: Path, image: Path, line: dict) -> dict:
    row = {"image": str(image), "status": line["status"], "top": "", "probability": "", "valid": "", "note": ""}
    if line["status"] == "succeeded":
        report = line["result"]
        (out_dir / f"{image.stem}.json").write_text(json.dumps(report, indent=1))
        analysis = report["imagingAnalysis"][0]
        row["valid"] = analysis["mediaValidity"]["isValid"]
        top = (report["conclusion"] or analysis["conclusion"])[0]
        row["top"] = top["code"]["coding"][0]["code"] + " " + top["code"]["text"]
        row["probability"] = f"{top['probability']:.1f}"
    else:
        row["note"] = line.get("error") or ""
    return row


def _summary(out_dir: Path, rows: list[dict]) -> None:
    with open(out_dir / "summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = Table(title=f"{len(rows)} images → {out_dir}")
    for col in ("image", "status", "valid", "top", "probability", "note"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("image", "status", "valid", "top", "probability", "note")))
    Console().print(table)
