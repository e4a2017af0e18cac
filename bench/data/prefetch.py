"""Bounded read-ahead: an iterator run in a background thread, a few items ahead of the code that consumes it.

`Prefetch(items, depth)` pulls `items` in a daemon thread and hands them over through a queue of `depth` slots, so
at most depth + 1 items exist beyond what the consumer took (the queue's, and the one the worker holds while the
queue is full). A thread is enough: the work it overlaps (file reads, ffmpeg subprocesses, numpy and torch
kernels) releases the GIL. An exception raised by `items` is raised again, the same object, where its item would
have been consumed. Closing (`close()`, leaving the `with` block, or the consumer's generator being closed) stops
the worker at its next hand-over and closes `items` in that thread. `wait_seconds` is the time the consumer waited
for an item: what the read-ahead did not hide.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable

DEPTH = 2            # items ready ahead of the consumer (frames: memory stays a few frames)
POLL_SECONDS = 0.05  # how often a worker blocked on a full queue looks for a stop
JOIN_SECONDS = 10.0  # close() waits this long for the worker; a source stuck in a read is left to its daemon thread

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _put(slots: queue.Queue, item, stop: threading.Event) -> bool:
    """Hand over one item; False once the consumer has stopped (then no further item is pulled)."""
    while not stop.is_set():
        try:
            slots.put(item, timeout=POLL_SECONDS)
            break
        except queue.Full:
            pass
    return not stop.is_set()


def _work(items: Iterable, slots: queue.Queue, stop: threading.Event) -> None:
    # No reference to the Prefetch object: one dropped without close() can still be collected, and then stops this.
    try:
        iterator = iter(items)
        try:
            for item in iterator:
                if not _put(slots, item, stop):
                    return
        finally:
            if hasattr(iterator, "close"):  # a generator's `with` blocks (open files) end in this thread
                iterator.close()
    except BaseException as error:  # every failure belongs to the consumer
        _put(slots, _Failure(error), stop)
        return
    _put(slots, _END, stop)


class Prefetch:
    """Iterate `items` in a background thread, at most `depth` (+1 in hand) items ahead; started on construction,
    so use it as a context manager (or call close()) to stop it when the consumer stops early."""

    def __init__(self, items: Iterable, depth: int = DEPTH, name: str = "prefetch"):
        self._stop = threading.Event()  # first: __del__ needs it even when the check below fails
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, found {depth}")
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._done = False
        self.wait_seconds = 0.0
        self._thread = threading.Thread(target=_work, args=(items, self._slots, self._stop), name=name, daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        started = time.perf_counter()
        item = self._slots.get()
        self.wait_seconds += time.perf_counter() - started
        if item is _END or isinstance(item, _Failure):
            self._done = True
            self._thread.join()  # it has handed over its last item
            if item is _END:
                raise StopIteration
            raise item.error
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        while True:  # free the items nobody will take
            try:
                self._slots.get_nowait()
            except queue.Empty:
                break
        self._thread.join(JOIN_SECONDS)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self._stop.set()
