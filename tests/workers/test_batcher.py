from __future__ import annotations

import threading
import time

import pytest

from workers.batcher import DynamicBatcher


def test_concurrent_submitters_share_batches() -> None:
    calls: list[int] = []

    def fn(items):
        calls.append(len(items))
        return [x * 2 for x in items]

    batcher = DynamicBatcher(fn, max_batch_size=8, max_wait_s=0.2)
    results: dict[int, int] = {}
    barrier = threading.Barrier(8)

    def job(i: int) -> None:
        barrier.wait()
        results[i] = batcher.submit(i).result(timeout=5)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert results == {i: 2 * i for i in range(8)}
    assert max(calls) > 1, "items from concurrent jobs should share a model call"
    assert sum(calls) == 8


def test_max_batch_size_is_respected() -> None:
    calls: list[int] = []
    batcher = DynamicBatcher(lambda items: calls.append(len(items)) or list(items), max_batch_size=3, max_wait_s=0.1)
    assert batcher.map(list(range(10)), timeout=5) == list(range(10))
    batcher.close()
    assert max(calls) <= 3 and sum(calls) == 10


def test_a_lone_item_waits_at_most_max_wait() -> None:
    batcher = DynamicBatcher(lambda items: list(items), max_batch_size=64, max_wait_s=0.05)
    start = time.perf_counter()
    assert batcher.submit("x").result(timeout=5) == "x"
    assert time.perf_counter() - start < 1.0
    batcher.close()


def test_errors_reach_every_item_of_the_batch_and_the_batcher_survives() -> None:
    state = {"fail": True}

    def fn(items):
        if state["fail"]:
            raise RuntimeError("model exploded")
        return list(items)

    batcher = DynamicBatcher(fn, max_batch_size=4, max_wait_s=0.05)
    futures = [batcher.submit(i) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="model exploded"):
            f.result(timeout=5)
    state["fail"] = False
    assert batcher.submit(7).result(timeout=5) == 7
    batcher.close()


def test_wrong_output_count_is_an_error() -> None:
    batcher = DynamicBatcher(lambda items: [], max_batch_size=2, max_wait_s=0.01)
    with pytest.raises(RuntimeError, match="0 outputs"):
        batcher.submit(1).result(timeout=5)
    batcher.close()


def test_batch_hook_sees_sizes() -> None:
    seen: list[int] = []
    batcher = DynamicBatcher(lambda items: list(items), max_batch_size=5, max_wait_s=0.1,
                             on_batch=lambda n, s: seen.append(n))
    batcher.map([1, 2, 3, 4, 5], timeout=5)
    batcher.close()
    assert sum(seen) == 5
