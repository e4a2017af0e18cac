"""Input: the dataset catalogue, readers, colour conversion, the protocol's geometry and frame plan, the bundled clip."""
