"""Dynamic batching: images from concurrent jobs share one model call.

Jobs run in worker threads and `submit` items; one batching thread owns the
model, takes up to `max_batch_size` items, waiting at most `max_wait_s` after
the first one arrives, and resolves each item's future with its own output.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

BatchHook = Callable[[int, float], None]  # (batch size, seconds in the model call)


class DynamicBatcher(Generic[In, Out]):
    def __init__(
        self,
        fn: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        on_batch: BatchHook | None = None,
        name: str = "dermq-batcher",
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: queue.Queue[tuple[In, Future[Out]] | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: In) -> Future[Out]:
        if self._closed:
            raise RuntimeError("batcher is closed")
        fut: Future[Out] = Future()
        self._queue.put((item, fut))
        return fut

    def submit_all(self, items: Sequence[In]) -> list[Future[Out]]:
        """Submit all items at once, so they can share a batch; the caller may work on while they run."""
        return [self.submit(item) for item in items]

    def map(self, items: Sequence[In], timeout: float | None = None) -> list[Out]:
        """`submit_all`, then wait for every output."""
        return [f.result(timeout=timeout) for f in self.submit_all(items)]

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _collect(self) -> list[tuple[In, Future[Out]]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # keep the stop signal for the loop
                break
            batch.append(nxt)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
            if not live:
                continue
            start = time.perf_counter()
            try:
                outputs = self._fn([item for item, _ in live])
                if len(outputs) != len(live):
                    raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(live)} inputs")
            except BaseException as exc:  # the error belongs to every job in the batch
                for _, fut in live:
                    fut.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(live), time.perf_counter() - start)
            for (_, fut), out in zip(live, outputs):
                fut.set_result(out)
