"""Command-line argument types for values with a valid range, so that a command refuses them before anything runs (argparse
prints the usage and the reason, exit status 2) instead of failing, or silently clamping, later."""
from __future__ import annotations

import argparse


def _number(kind, text: str, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None


def positive_int(text: str) -> int:
    value = _number(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a positive integer")
    return value


def non_negative_int(text: str) -> int:
    value = _number(int, text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: expected an integer >= 0")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a positive number")
    return value


def non_negative_float(text: str) -> float:
    value = _number(float, text, "a number >= 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a number >= 0")
    return value


def share(text: str) -> float:
    """A share in [0, 1] (an overlap threshold)."""
    value = _number(float, text, "a number in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a number in [0, 1]")
    return value


def open_share(text: str) -> float:
    """A level in (0, 1) (a confidence level)."""
    value = _number(float, text, "a number in (0, 1)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a number strictly between 0 and 1")
    return value
