"""Errors that the CLI reports as one clear line and a non-zero exit."""


class BenchError(Exception):
    """A user-facing failure: bad input, missing data, a missing tool. The message names the file and the problem."""


class InputError(BenchError):
    """Input data (a video file, a CSV, a catalogue entry) is missing or not what was declared."""
