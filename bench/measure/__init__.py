"""Measurement of coded frames and codec configurations: distortion metrics and complexity."""
