"""hytip-bench: the pipeline around the HyTIP codec, one subpackage per stage of the data flow

    data -> codecs -> measure -> sweep (records, results store) -> analysis -> reports/ (top level)

`cli` holds one module per `run_bench.py` subcommand; `benchmarks` holds scripts that print figures.
"""
from pathlib import Path

# The checkout: the catalogue (datasets.yaml) and the anchor data (anchors/) are read from it (editable installs).
REPO_ROOT = Path(__file__).resolve().parents[1]
