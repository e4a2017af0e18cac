"""The base of every error hytip raises for bad input, so a caller can catch them all in one clause."""


class HytipError(ValueError):
    """Bad input to the codec: a wrong checkpoint, frames, arguments or bitstream. The message names the problem."""
