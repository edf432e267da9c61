"""`dermq worker` refuses to start on a corrupt bundle, saying why, instead of taking tasks it cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import demo_bundle


def test_worker_exits_on_a_corrupt_bundle(tmp_path: Path) -> None:
    bundle = demo_bundle(tmp_path / "bundle")
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    env = {**os.environ, "DERMQ_MODEL_DIR": str(bundle), "DERMQ_DATA_DIR": str(tmp_path / "data"),
           "DERMQ_WORKER_METRICS_PORT": "0", "DERMQ_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "dermq.cli", "worker"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "cannot load the configured model" in done.stderr and "sha256" in done.stderr
