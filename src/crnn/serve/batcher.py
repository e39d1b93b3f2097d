"""Dynamic micro-batching: images from concurrent requests share forward passes.

One collector task takes queued images in arrival order, waits at most ``max_wait`` after the first
for more (up to ``max_batch``), and runs the batch in a single dedicated worker thread, so the event
loop never blocks on inference and the model is never called from two threads at once. While a
batch runs, new images pile up in the queue and form the next, larger batch: under load batches
fill up by themselves; when idle, a lone request waits at most ``max_wait``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from crnn.decode import CharPrediction
from crnn.predict import Recognizer

log = logging.getLogger("crnn.serve")


class OverloadedError(RuntimeError):
    """The queue is full or the batcher is stopping: the request should be retried later (503)."""


@dataclass
class _Item:
    image: np.ndarray
    chars: bool
    future: asyncio.Future[CharPrediction] = field(repr=False)


def recognize(recognizer: Recognizer, images: Sequence[np.ndarray], chars: Sequence[bool]) -> list[CharPrediction]:
    """Recognise BGR uint8 images in one call, through the recognizer's decoder.

    Every ``Prediction`` carries its per-symbol confidences and positions (they cost little); ``chars``
    only says which requests return them, which the app decides.
    """
    return recognizer.recognize_arrays(list(images))


class MicroBatcher:
    """Groups images from concurrent callers into batches for ``infer``.

    Args:
        infer: (images, want_chars) -> one result per image, run in the worker thread.
        max_batch: images per call of ``infer``.
        max_wait_s: how long the first image of a batch waits for company.
        max_queue: images that may wait; beyond, ``submit`` raises ``OverloadedError``.
        on_batch: called with (batch size, seconds) after each batch (metrics).
    """

    def __init__(self, infer: Callable[[list[np.ndarray], list[bool]], list[CharPrediction]], max_batch: int,
                 max_wait_s: float, max_queue: int, on_batch: Callable[[int, float], None] | None = None):
        self.infer = infer
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crnn-infer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop`` while the collector is alive."""
        return self._task is not None and not self._task.done() and not self._closing

    @property
    def pending(self) -> int:
        """Images waiting for a batch."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the collector task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="crnn-batcher")

    async def run_in_worker(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the inference thread (used for the warm-up pass)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def submit(self, images: Sequence[np.ndarray], chars: bool = False) -> list[CharPrediction]:
        """Queue images and wait for their results, in input order.

        Raises:
            OverloadedError: the queue is full or the batcher is stopping.
            Exception: whatever ``infer`` raised for the batch.
        """
        if not self.running:
            raise OverloadedError("the service is shutting down")
        if self._queue.qsize() + len(images) > self.max_queue:
            raise OverloadedError(f"{self._queue.qsize()} images are already queued (limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        items = [_Item(im, chars, loop.create_future()) for im in images]
        for item in items:
            self._queue.put_nowait(item)
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        finally:  # on timeout or disconnect the batcher skips what is still queued
            for item in items:
                item.future.cancel()

    async def stop(self) -> None:
        """Refuse new work, finish every queued image, then stop the collector and the thread."""
        self._closing = True
        if self._task is not None:
            wake = asyncio.get_running_loop().create_future()
            wake.cancel()  # a done item wakes a collector blocked on an empty queue and is then skipped
            self._queue.put_nowait(_Item(np.zeros((1, 1, 3), np.uint8), False, wake))
            await self._task
        self._executor.shutdown(wait=True)

    async def _next_batch(self) -> list[_Item]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [item for item in await self._next_batch() if not item.future.done()]
            if batch:
                t0 = time.perf_counter()
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.infer, [it.image for it in batch], [it.chars for it in batch])
                except Exception as e:  # one bad batch fails its requests, never the service
                    log.exception("inference failed for a batch of %d images", len(batch))
                    for it in batch:
                        if not it.future.done():
                            it.future.set_exception(e)
                else:
                    for it, res in zip(batch, results, strict=True):
                        if not it.future.done():
                            it.future.set_result(res)
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - t0)
            if self._closing and self._queue.empty():
                return
