"""`dermq bench gate`: the image gate's rates on held-out real images and their degraded copies."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@click.command("gate")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_DATA,
              show_default="../shared/data", help="Folder laid out as shared/data (ham10000, isic2017, clinical, nonskin).")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Classifier bundle with an image_gate head. Default: the shipped one.")
@click.option("--limit", type=int, default=None, help="At most this many images per set (default: the whole test split).")
@click.option("--degraded", "degraded_per_set", type=int, default=60, show_default=True,
              help="Valid images per skin set to degrade (one copy per defect).")
@click.option("--classical", is_flag=True, help="Measure the classical fallback gate instead of the bundle's learned head.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def gate(data: Path, bundle: Path | None, limit: int | None, degraded_per_set: int, classical: bool, as_json: bool) -> None:
    """Print dermatological / modality / valid rates per held-out set and how degraded copies fail."""
    from pipeline.classify import Classifier
    from pipeline.models.bundle import SHIPPED_BUNDLES, load_bundle
    from training.gate_evaluation import evaluate_gate, held_out_sets

    classifier = Classifier.from_bundle(load_bundle(bundle or SHIPPED_BUNDLES["classification"]))
    sets = {name: records[:limit] if limit else records for name, records in held_out_sets(data).items()}
    console = Console(stderr=as_json, width=150)
    report = evaluate_gate(classifier, sets, degraded_per_set=degraded_per_set, classical=classical,
                           progress=lambda name, n: console.print(f"  scored {name}: {n}"))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    gate_kind = ("classical fallback" if classical else "learned head") if classifier.has_gate else \
        "classical fallback (bundle has no image_gate head)"
    table = Table(title=f"image gate on held-out images ({gate_kind})")
    for column in ("set", "images", "dermatological", "modality right", "valid", "valid + modality", "people refused", "failing metrics"):
        table.add_column(column, justify="left" if column in ("set", "failing metrics") else "right")
    for name, result in report.sets.items():
        r = result.rates()
        derm = r["dermatological"] if name != "nonskin" else 1 - r["dermatological"]
        table.add_row(name, f"{result.images}", f"{derm:.1%}" + (" refused" if name == "nonskin" else ""),
                      f"{r['modality_right']:.1%}", f"{r['valid']:.1%}", f"{r['valid_and_modality_right']:.1%}",
                      f"{r['people_not_dermatological']:.1%}" if "people_not_dermatological" in r else "-",
                      ", ".join(f"{k} {v}" for k, v in sorted(result.failing.items())))
    console.print(table)
    degraded = Table(title="degraded copies of valid images")
    for column in ("defect", "copies", "not acceptable", "right metric failing"):
        degraded.add_column(column, justify="left" if column == "defect" else "right")
    for kind, result in report.degraded.items():
        r = result.rates()
        degraded.add_row(kind, f"{result.images}", f"{r['not_acceptable']:.1%}", f"{r['right_metric']:.1%}")
    console.print(degraded)
    far = report.far.rates()
    console.print(f"clinical photos shrunk onto a plain background ({report.far.images}): {far['dermatological']:.1%} still "
                  f"skin, {far['framing_failed']:.1%} fail framing")
    heads = "gate heads (image gate + sharpness)" if classifier.sharpness_weight is not None else "gate head"
    console.print(f"quality metrics {report.quality_ms:.1f} ms/image; {heads} {report.head_ms * 1000:.1f} µs/image "
                  "(on the classifier's pooled features: no extra forward pass)")
