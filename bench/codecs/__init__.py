"""Codecs behind one interface (`bench.codecs.base`): HyTIP and the conventional encoders."""
