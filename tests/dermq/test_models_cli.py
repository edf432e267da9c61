"""`dermq models`: verify exits non-zero on a bad bundle; publish, list, inspect and use work on the store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dermq.cli.models import models
from workers import model_registry
from workers.storage import LocalObjectStore

from support import demo_bundle


def run(*args: str):
    return CliRunner().invoke(models, list(args), catch_exceptions=False)


def test_verify(tmp_path: Path) -> None:
    bundle = demo_bundle(tmp_path / "b")
    ok = run("verify", str(bundle))
    assert ok.exit_code == 0 and "OK" in ok.output
    manifest = bundle / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"architecture": "efficientnet_b0"', '"architecture": "efficientnet_b1"'))
    bad = run("verify", str(bundle))
    assert bad.exit_code == 1 and "do not fit efficientnet_b1" in bad.output
    assert run("verify", str(tmp_path / "missing")).exit_code == 1


def test_publish_list_inspect_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bundle = demo_bundle(tmp_path / "b")
    published = run("publish", str(bundle), "--data-dir", str(data))
    assert published.exit_code == 0 and "published demo@1" in published.output
    store = LocalObjectStore(data / "objects")
    assert [str(r) for r, _ in model_registry.published(store)] == ["demo@1"]

    listed = run("list", "--data-dir", str(data))
    assert "demo@1" in listed.output and "classification: builtin" in listed.output
    inspected = run("inspect", "demo@1", "--data-dir", str(data))
    assert inspected.exit_code == 0 and "efficientnet_b0" in inspected.output and "2C30" in inspected.output
    assert '"name": "demo"' in run("inspect", str(bundle), "--json").output

    used = run("use", "demo@1", "--data-dir", str(data))
    assert used.exit_code == 0 and model_registry.selection(store) == {"classification": "demo@1"}
    assert "classification: published:demo@1" in run("list", "--data-dir", str(data)).output
    missing = run("use", "demo@7", "--data-dir", str(data))
    assert missing.exit_code == 1 and "no bundle demo@7" in missing.output
    assert run("use", "--default", "classification", "--data-dir", str(data)).exit_code == 0
    assert model_registry.selection(store) == {}
