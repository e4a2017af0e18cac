"""What a report reads: results tables (CSV or parquet), sweep folders, anchor CSVs and DCVC/CompressAI result JSON.

Every table goes through bench.analysis.rd_schema, so a missing, unreadable or malformed file raises ``InputError``
naming it. A sweep folder holds ``results.csv`` (or ``results.parquet``), ``records/<job>.json`` (per-frame data for
the drill-down), ``complexity.json``, ``sweep.json``, for matched rate points ``rate_match.json`` and, for anchors
regenerated with ``anchors --conform``, ``conformance.csv``; only the results table is required.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# Curves of an untrained or broken model need not rise with rate (the sweep writes them as they are): the report reads
# such tables without that check and notes the curves instead of refusing the file.
from bench.analysis.conformance import load_conformance_csv
from bench.analysis.rd_schema import (
    check_curves_rising,
    check_duplicates,
    import_compressai_json,
    import_dcvc_json,
    load_rd_csv,
    rd_frame,
)
from bench.errors import InputError

JSON_IMPORTERS = {"dcvc": import_dcvc_json, "compressai": import_compressai_json}
_NOT_KEYS = {"path", "dataset_names", "sequence_names"}   # the file itself; names come from the catalogue


@dataclass(frozen=True)
class InputFile:
    path: str
    kind: str
    rows: int
    sha256: str


@dataclass
class ReportInputs:
    rd: pd.DataFrame                                   # RD points in the anchor schema (+ result columns, file, where)
    records: list = field(default_factory=list)       # "done" job records with per-frame data
    failed_jobs: list = field(default_factory=list)   # (record file, key, error) of failed jobs
    complexity: list = field(default_factory=list)    # complexity.json configurations, each with its "file"
    sweeps: list = field(default_factory=list)        # (sweep.json path, its content)
    rate_matches: list = field(default_factory=list)  # (rate_match.json path, its content): matched rate points
    conformance: list = field(default_factory=list)   # (conformance.csv path, its table): anchors --conform
    files: list = field(default_factory=list)         # InputFile of every table read
    notes: list = field(default_factory=list)         # problems that do not stop the report


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def read_results_table(path: Path) -> pd.DataFrame:
    """An RD/results table (CSV or parquet) validated against the RD schema, except for rising curves."""
    if path.suffix == ".parquet":
        try:
            table = pd.read_parquet(path)
        except ImportError as exc:
            raise InputError(f"{path}: reading parquet needs pyarrow ({exc}); give results.csv instead") from None
        except Exception as exc:  # pyarrow raises its own error types for a damaged file
            raise InputError(f"{path}: not a readable parquet file ({exc})") from None
        return rd_frame(table.to_dict("records"), str(path), check_curves=False)
    try:
        return load_rd_csv(path, check_curves=False)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 CSV ({exc})") from None


def parse_json_spec(kind: str, spec: list[str]) -> tuple[Path, dict]:
    """``FILE KEY=VALUE...`` of --dcvc/--compressai: the JSON file and the importer's keyword arguments (the protocol
    facts the JSON does not hold). Integer arguments are converted; an unknown or missing key is an InputError."""
    importer = JSON_IMPORTERS[kind]
    params = {k: p for k, p in inspect.signature(importer).parameters.items() if k not in _NOT_KEYS}
    path, options = Path(spec[0]), {}
    for item in spec[1:]:
        key, sep, value = item.partition("=")
        if not sep or key not in params:
            accepted = ", ".join(params)
            raise InputError(f"--{kind} {path}: {item!r} is not KEY=VALUE with KEY one of {accepted}")
        options[key] = int(value) if "int" in str(params[key].annotation) and value.lstrip("-").isdigit() else value
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name not in options]
    if missing:
        raise InputError(f"--{kind} {path}: missing {', '.join(k + '=...' for k in missing)}")
    return path, options


def catalogue_names() -> dict:
    """DCVC's result JSON names datasets and sequences as its test config does (`HEVC_B`, the raw file name with or
    without its extension); the catalogue's names pair them with our runs and anchors. Names it lacks stay."""
    from bench.data.catalog import load_catalog

    datasets = load_catalog().datasets
    sequences = {}
    for seq in (s for d in datasets.values() for s in d.sequences.values()):
        for file in seq.files:
            sequences[file] = sequences[Path(file).stem] = seq.name
    return {"dataset_names": {name.replace("-", "_"): name for name in datasets}, "sequence_names": sequences}


def read_inputs(paths=(), json_specs=(), complexity_files=()) -> ReportInputs:
    """Read every input into one ReportInputs. ``json_specs``: (kind, [FILE, KEY=VALUE...]) pairs."""
    tables, inputs, seen = [], ReportInputs(rd=pd.DataFrame()), set()

    def add_table(path: Path, kind: str, frame: pd.DataFrame) -> None:
        tables.append(frame)
        try:
            check_curves_rising(frame)
        except InputError as exc:
            inputs.notes.append(f"{exc}. BD values of such a curve interpolate a curve that is not monotonic.")
        inputs.files.append(InputFile(str(path), kind, len(frame), _sha256(path)))

    for path in map(Path, paths):
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        if path.is_dir():
            _read_sweep_folder(path, inputs, add_table)
        elif not path.exists():
            raise InputError(f"{path}: file not found")
        elif path.suffix == ".json":
            raise InputError(f"{path}: give result JSON with --dcvc or --compressai and its protocol (KEY=VALUE)")
        else:
            add_table(path, "results table" if path.suffix == ".parquet" else "RD CSV", read_results_table(path))
    for kind, spec in json_specs:
        path, options = parse_json_spec(kind, spec)
        if kind == "dcvc":
            options.update(catalogue_names())
        add_table(path, f"{kind} JSON", JSON_IMPORTERS[kind](path, **options))
    for path in map(Path, complexity_files):
        inputs.complexity += read_complexity(path)
    if not tables:
        raise InputError("no results given: pass results tables, sweep folders or --dcvc/--compressai JSON")
    inputs.rd = pd.concat(tables, ignore_index=True)
    check_duplicates(inputs.rd)
    return inputs


def _read_sweep_folder(folder: Path, inputs: ReportInputs, add_table) -> None:
    results = next((folder / n for n in ("results.csv", "results.parquet") if (folder / n).is_file()), None)
    if results is None:
        raise InputError(f"{folder}: a sweep folder needs results.csv or results.parquet; neither is there")
    table = read_results_table(results)
    add_table(results, "sweep results", table)
    # Only the table's own jobs: a store keeps the records of other configurations and of rate-matching probes.
    jobs = set(table["job"].dropna()) if "job" in table else None
    for path in sorted((folder / "records").glob("*.json")):
        record = _read_json(path)
        if not isinstance(record, dict) or "status" not in record:
            raise InputError(f"{path}: not a job record (expected an object with 'status')")
        if record["status"] == "done":
            if jobs is not None and record.get("key", path.stem) not in jobs:
                continue
            result = record.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("row"), dict):
                raise InputError(f"{path}: a done record needs result.row (the results row of the job)")
            inputs.records.append({**result, "file": str(path), "key": record.get("key", path.stem)})
        else:
            inputs.failed_jobs.append((str(path), record.get("key", path.stem), str(record.get("error", "no error text"))))
    if (folder / "complexity.json").is_file():
        inputs.complexity += read_complexity(folder / "complexity.json")
    if (folder / "rate_match.json").is_file():
        match = _read_json(folder / "rate_match.json")
        if not isinstance(match, dict) or not isinstance(match.get("choices"), list):
            raise InputError(f"{folder / 'rate_match.json'}: expected an object with 'choices' (bench.sweep.rate_match)")
        inputs.rate_matches.append((str(folder / "rate_match.json"), match))
    if (folder / "conformance.csv").is_file():
        inputs.conformance.append((str(folder / "conformance.csv"), load_conformance_csv(folder / "conformance.csv")))
    if (folder / "sweep.json").is_file():
        sweep = _read_json(folder / "sweep.json")
        if not isinstance(sweep, dict):
            raise InputError(f"{folder / 'sweep.json'}: expected an object")
        inputs.sweeps.append((str(folder / "sweep.json"), sweep))


def read_complexity(path: Path) -> list[dict]:
    """The configurations of a complexity.json, each with the file it came from; a sweep's count of HyTIP's
    architecture (``hytip_architecture``, made whether or not HyTIP ran) stands for HyTIP where no configuration is
    HyTIP's."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    data = _read_json(path)
    configurations = data.get("configurations") if isinstance(data, dict) else None
    if not isinstance(configurations, list) or not all(isinstance(c, dict) and "codec" in c for c in configurations):
        raise InputError(f"{path}: expected {{\"configurations\": [{{\"codec\": ..., ...}}, ...]}}")
    architecture = data.get("hytip_architecture")
    if isinstance(architecture, dict) and not any(c["codec"] == "HyTIP" for c in configurations):
        configurations = configurations + [{"codec": "HyTIP", "model": "architecture", **architecture}]
    return [{**c, "file": str(path)} for c in configurations]
