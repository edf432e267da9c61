import json
from pathlib import Path

import pytest
import torch

from pipeline.models.bundle import (
    MANIFEST_FILE,
    REFERENCE_NAME,
    WEIGHTS_FILE,
    BundleError,
    BundleManifest,
    ClassMetrics,
    HeadSpec,
    ModelBundle,
    load_bundle,
    parse_bundle,
    reference_bundle,
    save_bundle,
    _reference_weights,
    verify_bundle,
)

CLASSES = ["2C30", "2C32", "EK90"]


@pytest.fixture(scope="module")
def reference() -> ModelBundle:
    return reference_bundle(CLASSES)


def _save(directory: Path, state_dict, classes=CLASSES, **overrides) -> BundleManifest:
    fields = dict(
        name="dermq-test",
        version="1.2.0",
        architecture="efficientnet_b0",
        classes=classes,
        temperature=1.7,
        metrics={"2C30": {"sensitivity": 87.5, "specificity": 91.0, "support": 40, "auroc": 0.93}},
        summary_metrics={"top1": 0.81, "ece": 0.04},
        training_data={"datasets": ["isic2019"], "images": 25331},
    )
    fields.update(overrides)
    return save_bundle(directory, state_dict, **fields)


def test_save_load_roundtrip(reference, tmp_path):
    manifest = _save(tmp_path, reference.state_dict)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE, WEIGHTS_FILE]  # no temp files left
    loaded = load_bundle(tmp_path)
    assert loaded.manifest == manifest
    assert loaded.manifest.trained is True
    assert loaded.manifest.temperature == 1.7
    assert loaded.manifest.metrics["2C30"] == ClassMetrics(sensitivity=87.5, specificity=91.0, support=40, auroc=0.93)
    assert loaded.manifest.sensitivity_specificity("2C30") == (87.5, 91.0)
    assert loaded.manifest.sensitivity_specificity("EK90") == (None, None)
    assert loaded.state_dict.keys() == reference.state_dict.keys()
    for key, value in reference.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value), key
    module = loaded.build_module()
    assert not module.training
    assert torch.equal(module.state_dict()["classifier.1.weight"], reference.state_dict["classifier.1.weight"])
    assert verify_bundle(tmp_path) == []


def test_manifest_json_is_snake_case(reference, tmp_path):
    _save(tmp_path, reference.state_dict)
    raw = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert {"weights_sha256", "input_size", "summary_metrics", "training_data", "format_version"} <= raw.keys()
    assert raw["format_version"] == 1 and raw["task"] == "classification"


def test_sha256_mismatch_after_flipping_a_byte(reference, tmp_path):
    _save(tmp_path, reference.state_dict)
    weights = tmp_path / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01  # inside the last tensor's data: still decodes, but is not what was signed
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(tmp_path)
    assert any("sha256" in p for p in verify_bundle(tmp_path))


@pytest.mark.parametrize("missing", [MANIFEST_FILE, WEIGHTS_FILE])
def test_missing_file(reference, tmp_path, missing):
    _save(tmp_path, reference.state_dict)
    (tmp_path / missing).unlink()
    with pytest.raises(BundleError, match=missing):
        load_bundle(tmp_path)
    assert len(verify_bundle(tmp_path)) == 1


def test_missing_directory(tmp_path):
    problems = verify_bundle(tmp_path / "absent")
    assert len(problems) == 2 and all("cannot read" in p for p in problems)


def test_wrong_class_count_rejected(reference, tmp_path):
    # Consistent manifest + sha256, but 3-class weights under a 4-class class list.
    manifest = _save(tmp_path, reference.state_dict)
    raw = json.loads((tmp_path / MANIFEST_FILE).read_text())
    raw["classes"] = CLASSES + ["1F28"]
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=r"4 classes.*classifier\.1\.weight.*\(3, 1280\).*expected \(4, 1280\)"):
        load_bundle(tmp_path)
    assert manifest.weights_sha256 == raw["weights_sha256"]


def test_save_refuses_mismatched_weights(reference, tmp_path):
    with pytest.raises(BundleError, match="shape"):
        _save(tmp_path, reference.state_dict, classes=["a", "b"], metrics={})
    sd = dict(reference.state_dict)
    del sd["features.5.0.block.1.0.weight"]
    with pytest.raises(BundleError, match="missing"):
        _save(tmp_path, sd)
    assert not (tmp_path / MANIFEST_FILE).exists()


def test_build_module_reports_shape_mismatch(reference):
    bundle = ModelBundle(reference.manifest.model_copy(update={"classes": ["a", "b"]}), reference.state_dict)
    with pytest.raises(BundleError, match=r"dermq-reference-untrained 0: weights do not fit.*expected \(2, 1280\)"):
        bundle.build_module()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 0, "temperature"),
        ("task", "detection", "task"),
        ("weights_sha256", "abc", "weights_sha256"),
        ("mean", [0.5, 0.5], "mean"),
        ("classes", ["a", "a", "b"], "unique"),
        ("format_version", 2, "format_version"),
        ("unknown_field", 1, "unknown_field"),
    ],
)
def test_manifest_schema_errors(reference, tmp_path, field, value, message):
    _save(tmp_path, reference.state_dict)
    raw = json.loads((tmp_path / MANIFEST_FILE).read_text())
    raw[field] = value
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=message):
        load_bundle(tmp_path)
    assert verify_bundle(tmp_path)


def test_metrics_must_name_known_classes(reference, tmp_path):
    with pytest.raises(BundleError, match="not in the class list"):
        _save(tmp_path, reference.state_dict, metrics={"XX99": {"sensitivity": 50}})
    with pytest.raises(BundleError, match="sensitivity"):
        _save(tmp_path, reference.state_dict, metrics={"2C30": {"sensitivity": 150}})


def test_unknown_architecture(reference, tmp_path):
    _save(tmp_path, reference.state_dict)
    raw = json.loads((tmp_path / MANIFEST_FILE).read_text())
    raw["architecture"] = "vit_huge"
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(BundleError, match="unknown architecture 'vit_huge'"):
        load_bundle(tmp_path)


def test_parse_bundle_from_bytes(reference, tmp_path):
    _save(tmp_path, reference.state_dict)
    bundle = parse_bundle((tmp_path / MANIFEST_FILE).read_bytes(), (tmp_path / WEIGHTS_FILE).read_bytes())
    assert bundle.manifest.name == "dermq-test"
    with pytest.raises(BundleError, match="sha256"):
        parse_bundle((tmp_path / MANIFEST_FILE).read_bytes(), b"not safetensors")


def test_reference_bundle_is_deterministic_and_rng_independent(reference):
    _reference_weights.cache_clear()  # rebuild from scratch, not from the cache
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = reference_bundle(CLASSES)
    assert torch.equal(torch.get_rng_state(), before)  # global RNG neither used nor reseeded
    _reference_weights.cache_clear()
    torch.manual_seed(98765)
    b = reference_bundle(CLASSES)
    assert a.manifest == b.manifest == reference.manifest
    for key, value in reference.state_dict.items():
        assert torch.equal(value, a.state_dict[key]) and torch.equal(value, b.state_dict[key]), key
    a.state_dict["classifier.1.bias"].add_(1.0)  # callers get their own tensors
    assert torch.equal(reference_bundle(CLASSES).state_dict["classifier.1.bias"], b.state_dict["classifier.1.bias"])


def test_reference_bundle_manifest(reference, tmp_path):
    m = reference.manifest
    assert m.name == REFERENCE_NAME and m.version == "0"
    assert m.trained is False and m.metrics == {} and m.classes == CLASSES
    assert m.architecture == "efficientnet_b0" and m.input_size == 224
    # Saving it reproduces the same sha256: the hash is of the safetensors bytes.
    saved = save_bundle(tmp_path, reference.state_dict, **m.model_dump(exclude={"weights_sha256", "format_version"}))
    assert saved.weights_sha256 == m.weights_sha256
    assert load_bundle(tmp_path).manifest == m
    assert reference_bundle(["a", "b"]).manifest.weights_sha256 != m.weights_sha256


def test_reference_bundle_gives_usable_outputs(reference):
    module = reference.build_module()
    with torch.inference_mode():
        logits = module(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3)))
    assert torch.isfinite(logits).all()
    assert logits.std() > 0.1  # untrained BatchNorm statistics would collapse these to ~1e-14


def _with_gate_head(reference, rows: int = 3, features: int = 1280) -> dict:
    state = dict(reference.state_dict)
    state["heads.image_gate.weight"] = torch.randn(rows, features, generator=torch.Generator().manual_seed(0))
    state["heads.image_gate.bias"] = torch.zeros(rows)
    return state


def test_auxiliary_head_travels_in_the_weights_file(reference, tmp_path):
    spec = HeadSpec(classes=["other", "clinical", "dermoscopic"], temperature=1.3, summary_metrics={"test_accuracy": 0.99})
    manifest = _save(tmp_path, _with_gate_head(reference), heads={"image_gate": spec})
    loaded = load_bundle(tmp_path)
    assert loaded.manifest == manifest and loaded.manifest.heads["image_gate"].temperature == 1.3
    found = loaded.head("image_gate")
    assert found is not None and tuple(found[1].shape) == (3, 1280) and tuple(found[2].shape) == (3,)
    assert loaded.head("absent") is None
    loaded.build_module()  # the backbone loads strictly; the head's tensors are not the backbone's


def test_head_tensors_must_fit_the_manifest(reference, tmp_path):
    spec = HeadSpec(classes=["other", "clinical", "dermoscopic"])
    with pytest.raises(BundleError, match="heads.image_gate.weight: shape"):
        _save(tmp_path, _with_gate_head(reference, rows=2), heads={"image_gate": spec})
    with pytest.raises(BundleError, match="unexpected tensors"):
        _save(tmp_path, _with_gate_head(reference))  # tensors of a head the manifest does not declare
