"""Stand-ins for the reference SDK's test photographs, rendered with dermq's phantom generator.

The reference suite sends real clinical photos that are not ours to copy. Each stand-in is a
synthetic skin-lesion photograph (`training.phantoms.make_phantom`, deterministic per seed) of the
class closest to the photo's condition, resized to the photo's exact pixel size: the reference tests
compare every returned attachment's width and height with the input's. `invalid.png` is a blue-green
checkerboard, a non-skin pattern the image gate refuses (quality 0, not dermatological). A flat grey
frame is not used: the running service was seen to accept one as a valid dermoscopic image.

Files are rendered once into a cache folder (env `DERMQ_REFERENCE_IMAGES`, else a folder under the
system temp dir) and reused.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

RENDER_VERSION = "2"  # bump when a recipe below changes, so cached files are re-rendered


@dataclass(frozen=True)
class StandIn:
    name: str
    width: int
    height: int
    label: str | None  # phantom class (ICD-11 code in training.phantoms.PHANTOM_LOOKS); None: the invalid pattern
    seed: int
    scale: float | None = None  # psoriatic scale cover; 0 renders scale-free red plaques (eczema-like)


STAND_INS: dict[str, StandIn] = {s.name: s for s in [
    StandIn("psoriasis_01.jpg", 945, 509, "EA90", 101),
    StandIn("psoriasis_02.jpg", 800, 600, "EA90", 102),
    StandIn("psoriasis_03.jpg", 720, 540, "EA90", 103),
    StandIn("dermatitis.jpg", 650, 350, "EA90", 201, scale=0.0),
    StandIn("urticaria.jpg", 701, 454, "EB00", 301),
    StandIn("hidradenitis.jpg", 548, 800, "ED92.0", 401),
    StandIn("acne.jpg", 500, 400, "ED80", 501),
    StandIn("pustular_psoriasis.jpg", 800, 600, "ED80", 601),
    StandIn("alopecia.jpg", 1000, 563, "ED70.2", 701),
    StandIn("vitiligo.jpg", 800, 550, "ED63.0", 801),
    StandIn("ulcera.jpg", 1024, 768, "ED92.0", 901),
    StandIn("non_specific.jpg", 800, 1067, "2F21.0", 1001),
    StandIn("nevus.jpg", 600, 450, "2F20", 1101),
    StandIn("invalid.png", 640, 480, None, 0),
]}


def cache_dir() -> Path:
    folder = os.environ.get("DERMQ_REFERENCE_IMAGES")
    path = Path(folder) if folder else Path(tempfile.gettempdir()) / f"dermq-reference-images-v{RENDER_VERSION}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def render(spec: StandIn):
    """The stand-in as an HxWx3 uint8 RGB array."""
    import cv2
    import numpy as np

    if spec.label is None:  # a blue-green checkerboard of 40 px squares: nothing skin-coloured in it
        squares = (np.indices((spec.height, spec.width)).sum(0) // 40 % 2).astype(np.int16)
        return np.stack([squares * 0, 80 + squares * 120, 200 - squares * 100], -1).astype(np.uint8)
    from training.phantoms import make_phantom

    side = max(spec.width, spec.height)
    phantom = make_phantom(spec.seed, label=spec.label, size=side, modality="Clinical", scale=spec.scale)
    return cv2.resize(phantom.rgb, (spec.width, spec.height), interpolation=cv2.INTER_AREA)


def path(name: str) -> Path:
    """The stand-in file for one of the reference suite's resource names, rendered on first use."""
    import cv2

    spec = STAND_INS[name]
    target = cache_dir() / name
    if not target.exists():
        bgr = cv2.cvtColor(render(spec), cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if name.endswith(".jpg") else []
        ok, encoded = cv2.imencode(Path(name).suffix, bgr, params)
        if not ok:
            raise RuntimeError(f"could not encode {name}")
        tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(encoded.tobytes())
        tmp.replace(target)
    return target


_B64: dict[str, str] = {}


def b64(name: str) -> str:
    """Plain base64 of the stand-in file (what the reference client sends)."""
    if name not in _B64:
        _B64[name] = base64.b64encode(path(name).read_bytes()).decode("ascii")
    return _B64[name]


def size(name: str) -> tuple[int, int]:
    spec = STAND_INS[name]
    return spec.width, spec.height
