"""Batch size, batcher wait and job threads: the device's defaults unless a setting says otherwise."""

from __future__ import annotations

import torch

from core.settings import Settings
from workers.serving_shape import DEVICE_DEFAULTS, ServingShape, serving_shape


def test_unset_settings_take_the_devices_defaults(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert serving_shape(settings, torch.device("cpu")) == DEVICE_DEFAULTS["cpu"]
    assert serving_shape(settings, torch.device("cuda", 1)) == DEVICE_DEFAULTS["cuda"]
    # A GPU is fed larger batches by more job threads than a CPU.
    assert DEVICE_DEFAULTS["cuda"].batch_max_size > DEVICE_DEFAULTS["cpu"].batch_max_size
    assert DEVICE_DEFAULTS["cuda"].concurrency > DEVICE_DEFAULTS["cpu"].concurrency


def test_each_setting_overrides_its_default_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DERMQ_BATCH_MAX_SIZE", "16")
    monkeypatch.setenv("DERMQ_BATCH_MAX_WAIT_MS", "0")  # 0 is a value, not "unset"
    shape = serving_shape(Settings(data_dir=tmp_path), torch.device("cuda"))
    assert shape == ServingShape(batch_max_size=16, batch_max_wait_ms=0.0,
                                 concurrency=DEVICE_DEFAULTS["cuda"].concurrency)


def test_an_unknown_device_kind_is_fed_like_a_cpu(tmp_path) -> None:
    assert serving_shape(Settings(data_dir=tmp_path), torch.device("meta")) == DEVICE_DEFAULTS["cpu"]


def test_a_cpu_model_gets_half_the_cores_unless_a_setting_says_otherwise(tmp_path, monkeypatch) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert serving_shape(Settings(data_dir=tmp_path), torch.device("cpu")).model_threads == max(1, cores // 2)
    assert serving_shape(Settings(data_dir=tmp_path), torch.device("cuda")).model_threads is None  # torch's own
    monkeypatch.setenv("DERMQ_MODEL_THREADS", "3")
    assert serving_shape(Settings(data_dir=tmp_path), torch.device("cpu")).model_threads == 3
