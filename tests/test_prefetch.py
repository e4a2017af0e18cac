"""The bounded read-ahead (bench.data.prefetch): order, the memory bound, errors raised where their item is consumed,
stopping when the consumer stops; and in the HyTIP sweep codec, a source error in the middle of a sequence.
"""
import gc
import threading
import time

import numpy as np
import pytest
from PIL import Image

import golden
from bench.codecs.base import RatePoint, SourceSpec
from bench.codecs.hytip_codec import HytipCodec
from bench.data.colour import ColourSpec
from bench.data.prefetch import Prefetch
from bench.errors import InputError


def _until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def counted(pulled: list, n: int = 100):
    for i in range(n):
        pulled.append(i)
        yield i


def endless(closed: threading.Event):
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        closed.set()


def test_items_arrive_in_order_and_the_worker_ends():
    items = Prefetch(({"n": i} for i in range(500)), depth=3)
    assert [x["n"] for x in items] == list(range(500))
    assert not items.running
    with pytest.raises(StopIteration):
        next(items)


def test_the_worker_stays_at_most_depth_plus_one_items_ahead():
    pulled = []
    with Prefetch(counted(pulled), depth=2) as items:
        for taken in range(5):
            # depth items in the queue plus the one the worker holds while the queue is full, and no more
            assert _until(lambda: len(pulled) == taken + 3)
            time.sleep(0.1)
            assert len(pulled) == taken + 3
            assert next(items) == taken


def test_an_error_is_raised_where_its_item_would_have_been_consumed():
    def failing():
        yield "a"
        yield "b"
        raise InputError("clip.yuv: the file ended inside frame 2")

    items = Prefetch(failing(), depth=3)
    assert _until(lambda: not items.running)  # the worker failed before anything was consumed
    assert next(items) == "a" and next(items) == "b"
    with pytest.raises(InputError, match=r"^clip\.yuv: the file ended inside frame 2$"):
        next(items)
    with pytest.raises(StopIteration):
        next(items)


def test_closing_early_stops_the_worker_and_closes_the_source():
    closed = threading.Event()
    items = Prefetch(endless(closed), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    started = time.monotonic()
    items.close()
    assert time.monotonic() - started < 2
    assert not items.running and closed.is_set()  # the source's finally ran: its files are closed
    with pytest.raises(StopIteration):
        next(items)


def test_closing_the_consuming_generator_stops_the_worker():
    closed = threading.Event()

    def consumer():
        with Prefetch(endless(closed), name="test-consumer") as items:
            yield from items

    frames = consumer()
    assert next(frames) == 0
    frames.close()
    assert closed.is_set() and not any(t.name == "test-consumer" for t in threading.enumerate())


def test_a_dropped_prefetch_stops_its_worker():
    closed = threading.Event()
    items = Prefetch(endless(closed), depth=1)
    assert next(items) == 0
    del items
    gc.collect()
    assert _until(closed.is_set)


def test_wait_seconds_is_the_time_the_consumer_waited():
    def slow():
        for i in range(4):
            time.sleep(0.05)
            yield i

    with Prefetch(slow()) as items:
        assert list(items) == [0, 1, 2, 3]
        assert items.wait_seconds >= 0.15
    pulled = []
    with Prefetch(counted(pulled, 4), depth=4) as items:
        assert _until(lambda: len(pulled) == 4)
        assert list(items) == [0, 1, 2, 3] and items.wait_seconds < 0.05  # all were ready


def test_a_frame_that_fails_mid_sequence_names_its_file_and_leaves_no_reader_thread(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(tmp_path / "im00001.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "im00002.png")
    source = SourceSpec("Tiny", "png", str(tmp_path), 128, 64, "rgb24", 25.0, 8, True, 2, 2, ())
    codec = HytipCodec(str(golden.golden_checkpoint_path()), "golden", 1)
    with pytest.raises(InputError, match=r"im00002\.png: expected 128x64 like the first frame, found 64x64"):
        codec.code(source, RatePoint(0, 0), ColourSpec.for_protocol("BT709"), rate_mode="estimated", folders={})
    assert not any(t.name == "read png" for t in threading.enumerate())
