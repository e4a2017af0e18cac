"""hytip.allocator: glibc accepts the policy (mallopt returns 1 only for a valid parameter and value); elsewhere it
is a no-op. That it changes no value is the golden tests' job (hytip.load applies it)."""
import sys

import pytest

from hytip import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_applies_and_is_idempotent():
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True


def test_keep_freed_memory_is_a_no_op_off_linux(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
