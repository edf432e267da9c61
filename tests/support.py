"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import csv
import itertools
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx
import redis

from dermq.embedded import EmbeddedStack, ensure_dev_account, free_port
from core.settings import Settings

if TYPE_CHECKING:
    import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE = FIXTURES / "isic2017-sample"
SAMPLE_IMAGES = sorted((SAMPLE / "images").glob("*.jpg"))
# The shared data sets beside the checkout (CI has them); tests that need them skip without.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# A held-out clinical photograph (MSLD, CC BY-NC-SA 4.0: read from the shared set, never copied here).
CLINICAL_PHOTO = SHARED_DATA / "clinical" / "images" / "msld_2_1.jpg"
TEST_DB = 13
JWT_SECRET = "test-secret-" + "x" * 32
OTHER_USER, OTHER_PASSWORD = "other-clinic", "other-password-123"


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def image_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def attachment(path: Path, **extra: str) -> dict:
    return {"contentAttachment": {"data": image_b64(path), "contentType": "image/jpeg", **extra}}


class Service:
    """The running stack plus helpers for talking to it as a client would."""

    def __init__(self, stack: EmbeddedStack, username: str, password: str):
        self.stack = stack
        self.url = stack.url
        self.username = username
        self.password = password
        self._tokens: dict[str, str] = {}

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def token(self, username: str | None = None, password: str | None = None) -> str:
        username = username or self.username
        if username not in self._tokens:
            r = httpx.post(f"{self.url}/login", data={"username": username, "password": password or self.password})
            r.raise_for_status()
            self._tokens[username] = r.json()["access_token"]
        return self._tokens[username]

    def client(self, username: str | None = None, password: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120,
                            headers={"Authorization": f"Bearer {self.token(username, password)}"})


DEMO_CLASSES = ["EA89", "1F28", "2C30"]


def demo_bundle(directory: Path, *, version: str = "1", classes: list[str] | None = None, seed: int = 0) -> Path:
    """A small valid classifier bundle 'demo@<version>'; `seed` shifts the head bias so versions differ."""
    from pipeline.models.bundle import reference_bundle, save_bundle

    classes = classes or DEMO_CLASSES
    ref = reference_bundle(classes)
    state = {k: v + seed if k.endswith("classifier.1.bias") else v for k, v in ref.state_dict.items()}
    save_bundle(directory, state, name="demo", version=version, architecture="efficientnet_b0", classes=classes,
                trained=True)
    return directory


SERVICE_ENV = {
    "DERMQ_JWT_SECRET": JWT_SECRET,
    "DERMQ_WORKER_METRICS_PORT": "0",
    "DERMQ_VISIBILITY_TIMEOUT_S": "10",
    "DERMQ_SYNC_TIMEOUT_S": "60",
    "DERMQ_MAX_IMAGE_BYTES": "3000000",
    "DERMQ_MAX_IMAGE_PIXELS": "6000000",
    "DERMQ_MAX_IMAGES_PER_REQUEST": "16",
    "DERMQ_MAX_BATCH_ITEMS": "64",
    # Every test client logs in from 127.0.0.1; the limits themselves are tested on their own stacks.
    "DERMQ_LOGIN_ATTEMPTS_PER_ADDRESS": "1000/minute",
}


def own_database(redis_url: str, db: int) -> str:
    """The same Redis, database `db`, emptied: a private stack there shares no queue or lease with others."""
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


@contextmanager
def running_service(redis_url: str, data_dir: Path, *, workers: int = 1, **env: str) -> Iterator[Service]:
    """API + worker processes over HTTP, with a development and a second client account."""
    from api.accounts import AccountStore

    settings = Settings(data_dir=data_dir, redis_url=redis_url, jwt_secret=JWT_SECRET)
    username, password = ensure_dev_account(settings)
    AccountStore(settings.effective_accounts_file).add(OTHER_USER, OTHER_PASSWORD)
    stack = EmbeddedStack(settings, port=free_port(), workers=workers, env={**SERVICE_ENV, **env}, quiet=True)
    stack.start()
    try:
        stack.wait_for_workers()
        yield Service(stack, username, password)
    finally:
        stack.stop()
        for log in sorted((data_dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            print(f"----- {log.name} (tail) -----\n{tail}")


def run_example(kind: str, code: str, tmp_path: Path) -> dict:
    """Run a documentation page's Python or JavaScript client and return its `result` as JSON."""
    import json
    import subprocess
    import sys

    if kind == "python":
        script = tmp_path / "example.py"
        script.write_text(code + "import json, sys\njson.dump(result, sys.stdout)\n")
        cmd = [sys.executable, str(script)]
    else:  # an ES module so top-level await works; `require` is provided as in CommonJS
        script = tmp_path / "example.mjs"
        script.write_text('import { createRequire } from "module";\nconst require = createRequire(import.meta.url);\n'
                          + code + "process.stdout.write(JSON.stringify(result));\n")
        cmd = ["node", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def run_curl(url: str, token: str, body: str, tmp_path: Path) -> dict:
    """The pages' cURL command: POST a JSON body (from a file: an image is too long for an argument)."""
    import json
    import subprocess

    (tmp_path / "body.json").write_text(body)
    cmd = ["curl", "-s", "-X", "POST", url, "-H", "Content-Type: application/json",
           "-H", f"Authorization: Bearer {token}", "-d", f"@{tmp_path / 'body.json'}"]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)


def synthetic_clinical_photo() -> "np.ndarray":
    """A skin area with a lesion on a grey-blue table: the layout of a clinical (non-dermoscopic) photo."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    scene = np.zeros((600, 800, 3), np.uint8)
    scene[:] = (70, 90, 140)
    scene = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
    cv2.ellipse(scene, (400, 300), (300, 220), 0, 0, 360, (224, 172, 140), -1)
    cv2.circle(scene, (410, 300), 40, (120, 70, 50), -1)
    return np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8)


# --- a tiny HAM10000 + ISIC 2017 data root (the recipe layout) built from the ISIC sample ---
LESIONS_PER_CLASS = 6  # default fractions then give each class 1 test, 1 calibration, 4 train lesions
IMAGES_PER_LESION = [1, 2, 1, 3, 1, 2]
ISIC_PER_DIAGNOSIS = {"melanoma": 4, "nevus": 3, "seborrheic_keratosis": 3}
SHRINK = 4  # the sample is 1024x683; a quarter keeps decoding cheap on a busy CPU


def _sample_rows() -> list[dict[str, str]]:
    with (SAMPLE / "labels.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def shrunk_sample(folder: Path) -> list[tuple[Path, Path, str]]:
    """(image, mask, ISIC 2017 diagnosis) of the real sample, downscaled once."""
    import cv2

    folder.mkdir()
    out = []
    for row in _sample_rows():
        rgb = cv2.imread(str(SAMPLE / row["image"]), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(SAMPLE / row["mask"]), cv2.IMREAD_GRAYSCALE)
        size = (rgb.shape[1] // SHRINK, rgb.shape[0] // SHRINK)
        image, mask_path = folder / f"{row['image_id']}.jpg", folder / f"{row['image_id']}_segmentation.png"
        cv2.imwrite(str(image), cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(str(mask_path), cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))
        out.append((image, mask_path, row["diagnosis"]))
    return out


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def build_root(root: Path, sample: list[tuple[Path, Path, str]]) -> dict[str, int]:
    """A tiny data root in the recipe's layout; returns the HAM image count per class."""
    from training.dermoscopy import HAM_CLASSES

    ham = root / "ham10000"
    cycle = itertools.cycle(sample)
    rows, per_class, n = [], Counter(), 0
    for dx in HAM_CLASSES:
        for lesion in range(LESIONS_PER_CLASS):
            for _ in range(IMAGES_PER_LESION[lesion]):
                image, mask, _ = next(cycle)
                image_id = f"ISIC_{n:07d}"
                n += 1
                _link(image, ham / "images" / f"{image_id}.jpg")
                _link(mask, ham / "masks" / f"{image_id}_segmentation.png")
                rows.append([f"HAM_{dx}_{lesion}", image_id, dx, "histo", "50.0", "male", "back"])
                per_class[dx] += 1
    with (ham / "metadata.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"], *rows])

    isic = root / "isic2017"
    rows = []
    for diagnosis, count in ISIC_PER_DIAGNOSIS.items():
        for image, mask, _ in [s for s in sample if s[2] == diagnosis][:count]:
            image_id = f"ISIC_9{len(rows):06d}"
            _link(image, isic / "images" / f"{image_id}.jpg")
            _link(mask, isic / "masks" / f"{image_id}_segmentation.png")
            rows.append([image_id, str(float(diagnosis == "melanoma")), str(float(diagnosis == "seborrheic_keratosis")), diagnosis])
    with (isic / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["image_id", "melanoma", "seborrheic_keratosis", "diagnosis"], *rows])
    return dict(per_class)


class WebhookReceiver:
    """A webhook receiver on loopback (http.server in a thread): records every POST, answers with
    the scripted statuses in turn (per path), then 204."""

    def __init__(self, statuses: dict[str, list[int]] | None = None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = {path: list(codes) for path, codes in (statuses or {}).items()}
        self.received: list[dict] = []  # {"at", "path", "headers", "body", "status"}
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                import time

                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    codes = receiver.statuses.get(self.path, [])
                    status = codes.pop(0) if codes else 204
                    receiver.received.append({"at": at, "path": self.path, "headers": dict(self.headers.items()),
                                              "body": body, "status": status})
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, path: str, count: int = 1, timeout: float = 60.0) -> list[dict]:
        """The first `count` requests to `path`, waiting up to `timeout` seconds for them."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(got := [r for r in self.received if r["path"] == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} of {count} webhook requests to {path} after {timeout} s")
                self._cond.wait(left)
            return got[:count]

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
