"""Contract tests run identically against the local-directory and the S3 backend.

The S3 backend talks HTTP to moto's S3 server on loopback through the real
minio client, so request signing, error mapping and pagination are exercised
as they would be against MinIO.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from core.settings import Settings
from workers.storage import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageUnavailable,
    create_store,
)

BAD_KEYS = [
    "",
    "/abs/path",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "a/b/",
    "..",
    "a b",
    "a\\b",
    "a/b\x00c",
    "ümlaut",
    "a/~tmp",
    "x" * 256,
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto S3 server for the whole session; each test gets its own bucket."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(name, value)
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop()


def _s3_store(endpoint: str, bucket: str | None = None) -> S3ObjectStore:
    return S3ObjectStore(
        endpoint=endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=bucket or f"dermq-{uuid.uuid4().hex[:12]}",
        secure=False,
        region="us-east-1",
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return _s3_store(request.getfixturevalue("moto_endpoint"))


# --- contract ---------------------------------------------------------------


def test_bytes_roundtrip(store: ObjectStore) -> None:
    payload = bytes(range(256)) * 1000
    store.put_bytes("jobs/j1/input/0.jpg", payload, content_type="image/jpeg")
    assert store.get_bytes("jobs/j1/input/0.jpg") == payload


def test_empty_object_roundtrip(store: ObjectStore) -> None:
    store.put_bytes("empty", b"")
    assert store.get_bytes("empty") == b""
    assert store.exists("empty")


def test_json_roundtrip(store: ObjectStore) -> None:
    report = {"resourceType": "DiagnosticReport", "score": 0.5, "items": [1, "two", None], "näme": "ok"}
    store.put_json("jobs/j1/result.json", report)
    assert store.get_json("jobs/j1/result.json") == report


def test_exists(store: ObjectStore) -> None:
    assert not store.exists("a/b.bin")
    store.put_bytes("a/b.bin", b"x")
    assert store.exists("a/b.bin")
    # A prefix of an existing key is not itself an object.
    assert not store.exists("a")


def test_overwrite_replaces(store: ObjectStore) -> None:
    store.put_bytes("k", b"first version, longer")
    store.put_bytes("k", b"second")
    assert store.get_bytes("k") == b"second"
    assert [(i.key, i.size) for i in store.list("k")] == [("k", 6)]


def test_get_missing_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get_bytes("nope/missing.bin")
    with pytest.raises(KeyError):  # ObjectNotFound is a KeyError
        store.get_json("nope/missing.json")


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_bytes("d/x", b"1")
    store.delete("d/x")
    assert not store.exists("d/x")
    store.delete("d/x")
    store.delete("never/existed")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("d/x")


def test_list_by_prefix_with_sizes(store: ObjectStore) -> None:
    store.put_bytes("jobs/a/1", b"1")
    store.put_bytes("jobs/a/2", b"22")
    store.put_bytes("jobs/ab/3", b"333")
    store.put_bytes("jobs/b/4", b"4444")
    store.put_bytes("other/5", b"55555")

    listed = list(store.list("jobs/a/"))
    assert [(i.key, i.size) for i in listed] == [("jobs/a/1", 1), ("jobs/a/2", 2)]
    for info in listed:
        assert info.last_modified.tzinfo is not None
        assert info.last_modified.utcoffset() == timedelta(0)
        assert abs(info.last_modified - datetime.now(timezone.utc)) < timedelta(minutes=5)

    # Prefixes are string prefixes, as in S3.
    assert [i.key for i in store.list("jobs/a")] == ["jobs/a/1", "jobs/a/2", "jobs/ab/3"]
    assert [i.key for i in store.list()] == ["jobs/a/1", "jobs/a/2", "jobs/ab/3", "jobs/b/4", "other/5"]
    assert list(store.list("missing/")) == []


def test_list_order_is_byte_order(store: ObjectStore) -> None:
    # '-' (0x2d) sorts before '/' (0x2f): a naive directory walk would put
    # 'a/x' before 'a-b', S3 does not.
    for key in ["a/x", "a-b", "a0", "A", "a.z/y"]:
        store.put_bytes(key, b".")
    assert [i.key for i in store.list()] == sorted(["a/x", "a-b", "a0", "A", "a.z/y"])


def test_delete_prefix_returns_count(store: ObjectStore) -> None:
    for i in range(5):
        store.put_bytes(f"batch/b1/{i}", b"x")
    store.put_bytes("batch/b2/0", b"y")
    assert store.delete_prefix("batch/b1/") == 5
    assert [i.key for i in store.list("batch/")] == ["batch/b2/0"]
    assert store.delete_prefix("batch/b1/") == 0
    with pytest.raises(ValueError):
        store.delete_prefix("")  # refusing to wipe everything by accident
    assert store.exists("batch/b2/0")


def test_delete_older_than_past_and_future_cutoff(store: ObjectStore) -> None:
    store.put_bytes("ret/1", b"a")
    store.put_bytes("ret/2", b"b")
    store.put_bytes("keep/3", b"c")
    now = datetime.now(timezone.utc)
    assert store.delete_older_than("ret/", now - timedelta(hours=1)) == 0
    assert {i.key for i in store.list()} == {"ret/1", "ret/2", "keep/3"}
    assert store.delete_older_than("ret/", now + timedelta(hours=1)) == 2
    assert [i.key for i in store.list()] == ["keep/3"]
    with pytest.raises(ValueError):
        store.delete_older_than("ret/", datetime.now())  # naive datetimes are ambiguous


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_raise_value_error(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put_bytes(key, b"evil")
    with pytest.raises(ValueError):
        store.get_bytes(key)
    with pytest.raises(ValueError):
        store.exists(key)
    with pytest.raises(ValueError):
        store.delete(key)
    with pytest.raises(ValueError):
        store.put_json(key, {"evil": True})
    assert list(store.list()) == []


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../b", "a//", ".."])
def test_invalid_prefixes_raise_value_error(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(store.list(prefix))
    with pytest.raises(ValueError):
        store.delete_prefix(prefix)
    with pytest.raises(ValueError):
        store.delete_older_than(prefix, datetime.now(timezone.utc))


def test_ping_ok(store: ObjectStore) -> None:
    store.ping()


# --- local backend specifics --------------------------------------------------


def test_local_invalid_keys_write_nothing_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "sandbox" / "objects"
    store = LocalObjectStore(root)
    for key in BAD_KEYS:
        with pytest.raises(ValueError):
            store.put_bytes(key, b"evil")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "sandbox",
        "sandbox/objects",
    ]


def test_local_delete_older_than_uses_mtime(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    now = time.time()
    ages_h = {"jobs/old1/in.jpg": 48, "jobs/old2/out.json": 30, "jobs/new/in.jpg": 1, "jobs/fresh": 0}
    for key, age in ages_h.items():
        store.put_bytes(key, b"x")
        os.utime(tmp_path / key, (now - age * 3600, now - age * 3600))
    cutoff = datetime.fromtimestamp(now, tz=timezone.utc) - timedelta(hours=24)
    assert store.delete_older_than("jobs/", cutoff) == 2
    assert [i.key for i in store.list()] == ["jobs/fresh", "jobs/new/in.jpg"]
    # Emptied directories are pruned so retention does not leave husks behind.
    assert not (tmp_path / "jobs" / "old1").exists()


def test_local_failed_write_keeps_old_object_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_bytes("r/result.json", b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StorageUnavailable, match="disk on fire"):  # an outage: callers retry it
        store.put_bytes("r/result.json", b"new but never complete")
    monkeypatch.undo()

    assert store.get_bytes("r/result.json") == b"old"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["result.json"]


def test_local_list_ignores_foreign_and_temp_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_bytes("a/ok", b"1")
    (tmp_path / "a" / "ok.~tmp~deadbeef").write_bytes(b"half")
    (tmp_path / "a" / "with space").write_bytes(b"?")
    assert [i.key for i in store.list()] == ["a/ok"]


def test_local_ping_fails_when_root_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    root.rmdir()
    with pytest.raises(StorageUnavailable):
        store.ping()


def test_local_store_that_is_gone_is_unavailable_not_missing_keys(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    store.put_bytes("inputs/a.jpg", b"x")
    root.rename(tmp_path / "elsewhere")  # the volume was unmounted
    with pytest.raises(StorageUnavailable):
        store.get_bytes("inputs/a.jpg")
    (tmp_path / "elsewhere").rename(root)
    assert store.get_bytes("inputs/a.jpg") == b"x"
    with pytest.raises(ObjectNotFound):
        store.get_bytes("inputs/b.jpg")


def test_local_store_refusing_writes_is_unavailable(tmp_path: Path) -> None:
    import subprocess

    store = LocalObjectStore(tmp_path / "objects")
    if subprocess.run(["chattr", "+i", str(store.root)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:  # immutable even for root: every write is refused with EPERM
        with pytest.raises(StorageUnavailable, match="not permitted"):
            store.put_json("results/a.json", {"ok": True})
    finally:
        subprocess.run(["chattr", "-i", str(store.root)], check=True)
    store.put_json("results/a.json", {"ok": True})


def test_json_that_is_not_json_is_refused(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        store.put_json("r/nan.json", {"score": float("nan")})
    assert not store.exists("r/nan.json")


# --- S3 backend specifics -----------------------------------------------------


def test_s3_creates_missing_bucket_on_first_use(moto_endpoint: str) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    store = _s3_store(moto_endpoint, bucket)
    assert not store._client.bucket_exists(bucket)  # the constructor does no I/O
    store.put_bytes("k", b"v")
    assert store._client.bucket_exists(bucket)
    # A second store on the same bucket (another process) just uses it.
    assert _s3_store(moto_endpoint, bucket).get_bytes("k") == b"v"


def test_s3_bulk_delete_is_split_into_batches(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.storage.s3 as s3_module

    # DeleteObjects takes at most 1000 keys; a small batch size exercises the split cheaply.
    monkeypatch.setattr(s3_module, "_DELETE_BATCH", 4)
    store = _s3_store(moto_endpoint)
    keys = [f"many/{i:03d}" for i in range(10)]
    for key in keys:
        store.put_bytes(key, b"")
    store.put_bytes("other", b"")
    assert [i.key for i in store.list("many/")] == keys
    assert store.delete_prefix("many/") == 10
    assert [i.key for i in store.list()] == ["other"]


def test_s3_ping_dead_endpoint_fails_fast() -> None:
    store = _s3_store(f"127.0.0.1:{_free_port()}")  # nothing listens there any more
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        store.ping()
    assert time.monotonic() - started < 5.0
    # Data operations report the same, with the bucket and endpoint named.
    with pytest.raises(StorageUnavailable, match="cannot use bucket"):
        store.get_bytes("k")


# --- factory ----------------------------------------------------------------------


def test_create_store_local_uses_effective_storage_dir(tmp_path: Path) -> None:
    store = create_store(Settings(storage_backend="local", data_dir=tmp_path))
    assert isinstance(store, LocalObjectStore)
    assert store.root == (tmp_path / "objects").absolute()

    explicit = create_store(Settings(storage_backend="local", data_dir=tmp_path, storage_dir=tmp_path / "elsewhere"))
    assert isinstance(explicit, LocalObjectStore)
    assert explicit.root == (tmp_path / "elsewhere").absolute()


def test_create_store_s3_from_settings(moto_endpoint: str) -> None:
    bucket = f"settings-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        storage_backend="s3",
        s3_endpoint=moto_endpoint,
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_bucket=bucket,
        s3_secure=False,
        s3_region="us-east-1",
    )
    store = create_store(settings)
    assert isinstance(store, S3ObjectStore)
    assert store.bucket == bucket
    store.put_json("probe.json", {"ok": True})
    assert store.get_json("probe.json") == {"ok": True}
