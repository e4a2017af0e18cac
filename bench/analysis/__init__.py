"""Analysis of results tables: the RD CSV schema and importers, BD-rate."""
