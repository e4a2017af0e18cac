"""The dataset catalogue: which test sequences exist, the geometry of their raw files, where they lie under a data root.

The bundled `datasets.yaml` (repository root) describes the paper's test sets; extra YAML files with the same schema add
datasets or override fields of existing ones key by key, so a differently named local copy needs no code change.
The schema is documented at the top of `datasets.yaml`.
"""
from __future__ import annotations

import os
import string
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from bench import REPO_ROOT
from bench.errors import InputError

BUNDLED_CATALOG = REPO_ROOT / "datasets.yaml"
DATA_ROOT_ENV = "HYTIP_DATA_ROOT"
COLOR_TRANSFORMS = ("BT601", "BT709")
FORMS = ("raw", "png")  # a raw file as distributed, or a folder of frame_<n>.png in the official layout
PNG_PIX_FMT = "rgb24"  # the official PNG folders hold 8-bit RGB frames


class PixFmt(NamedTuple):
    bit_depth: int
    chroma: str  # "420" or "444"
    rgb: bool


# The ffmpeg pix_fmts of raw files that bench.data.readers reads (planar; 10-bit samples in little-endian 16-bit words).
PIX_FMTS = {
    "yuv420p": PixFmt(8, "420", False),
    "yuv420p10le": PixFmt(10, "420", False),
    "gbrp10le": PixFmt(10, "444", True),
}


@dataclass(frozen=True)
class Protocol:
    """How the published results code a sequence: the first `frames` frames in independent GOPs of `intra_period`,
    centre-cropped to a multiple of `crop_multiple`, then replicate-padded to a multiple of `pad_multiple`
    (bench.data.protocol does the cropping, padding and frame plan)."""

    frames: int
    intra_period: int
    crop_multiple: int
    pad_multiple: int


@dataclass(frozen=True)
class Sequence:
    name: str
    dataset: str
    files: tuple[str, ...]  # raw file names tried, in order
    width: int
    height: int
    frames: int  # frames in the raw file
    fps: float
    pix_fmt: str
    scene_cuts: tuple[int, ...]  # 1-based
    protocol: Protocol
    sources: tuple[Path, ...]  # the catalogue files that define it, later ones overriding earlier ones

    @property
    def bit_depth(self) -> int:
        return PIX_FMTS[self.pix_fmt].bit_depth

    @property
    def chroma(self) -> str:
        return PIX_FMTS[self.pix_fmt].chroma

    @property
    def is_rgb(self) -> bool:
        return PIX_FMTS[self.pix_fmt].rgb

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame in the raw file."""
        from bench.data.readers import raw_frame_bytes  # lazy, as in open()

        return raw_frame_bytes(self.name, self.width, self.height, self.pix_fmt)

    @property
    def crop_box(self):
        """The protocol's centre-crop window of this sequence's frames (a bench.data.protocol.CropBox)."""
        from bench.data.protocol import (
            centre_crop_box,  # lazy: it imports torch, which listing the catalogue does not need
        )

        return centre_crop_box(self.height, self.width, self.protocol.crop_multiple)

    def open(self, path: str | Path, *, num_frames: int | None = None):
        """Open `path` with bench.data.readers.open_source and this sequence's geometry; a folder is the official PNG
        layout (8-bit RGB). `num_frames` defaults to the catalogue's frame count for a raw file."""
        from bench.data.readers import (
            open_source,  # lazy: listing and resolving the catalogue need no reader
        )

        path = Path(path)
        if path.is_dir():
            return open_source(path, width=self.width, height=self.height, pix_fmt=PNG_PIX_FMT, num_frames=num_frames)
        return open_source(
            path, width=self.width, height=self.height, pix_fmt=self.pix_fmt,
            num_frames=self.frames if num_frames is None else num_frames,
        )


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    protocol: Protocol
    raw_dirs: tuple[str, ...]  # folder templates relative to the data root
    png_dir: str  # folder template of the PNG layout
    sequences: dict[str, Sequence]
    sources: tuple[Path, ...]

    def candidates(self, sequence: str, root: Path, *, form: str = "raw", color_transform: str = "BT601") -> list[Path]:
        """Every path tried for `sequence` under `root`, in order: each file name in each raw folder, or the PNG
        folder."""
        seq = self.sequences[sequence]
        if form == "png":
            bt709 = "_BT709" if color_transform == "BT709" else ""
            return [root / self.png_dir.format(dataset=self.name, sequence=seq.name, bt709=bt709)]
        paths: list[Path] = []
        for file in seq.files:
            for folder in self.raw_dirs:
                path = root / folder.format(dataset=self.name, sequence=seq.name, stem=Path(file).stem) / file
                if path not in paths:
                    paths.append(path)
        return paths


@dataclass(frozen=True)
class Located:
    sequence: Sequence
    path: Path
    form: str


@dataclass(frozen=True)
class Catalog:
    datasets: dict[str, Dataset]
    files: tuple[Path, ...]

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise InputError(
                f"unknown dataset {name!r}; the catalogue ({_names(self.files)}) has: {', '.join(self.datasets)}"
            )
        return self.datasets[name]

    def select(
        self, datasets: str | Iterable[str] | None = None, sequences: Iterable[str] | None = None
    ) -> list[Sequence]:
        """Sequences of the named datasets (all when None), in catalogue order, optionally only those named in
        `sequences`."""
        if datasets is None:
            names = list(self.datasets)
        else:
            names = [datasets] if isinstance(datasets, str) else list(dict.fromkeys(datasets))
        chosen = [self.dataset(n) for n in names]
        pool = [seq for ds in chosen for seq in ds.sequences.values()]
        if sequences is None:
            return pool
        wanted = [sequences] if isinstance(sequences, str) else list(sequences)
        unknown = [s for s in wanted if not any(seq.name == s for seq in pool)]
        if unknown:
            valid = "; ".join(f"{ds.name}: {', '.join(ds.sequences)}" for ds in chosen)
            raise InputError(
                f"unknown sequence(s) {', '.join(map(repr, unknown))} in {', '.join(names)}; valid: {valid}"
            )
        return [seq for seq in pool if seq.name in wanted]

    def locate(self, seq: Sequence, root: Path, *, form: str = "raw", color_transform: str = "BT601") -> Path | None:
        """The first candidate that exists (a raw file, or a PNG folder holding frame_1.png), else None."""
        _check_choice("form", form, FORMS)
        _check_choice("color_transform", color_transform, COLOR_TRANSFORMS)
        for path in self.datasets[seq.dataset].candidates(seq.name, root, form=form, color_transform=color_transform):
            if (path / "frame_1.png").is_file() if form == "png" else path.is_file():
                return path
        return None

    def resolve(
        self,
        datasets: str | Iterable[str] | None = None,
        sequences: Iterable[str] | None = None,
        *,
        data_root: str | Path | None = None,
        form: str = "raw",
        color_transform: str = "BT601",
    ) -> list[Located]:
        """Find every selected sequence under the data root; one InputError lists all that are missing."""
        selected = self.select(datasets, sequences)
        _check_choice("form", form, FORMS)
        _check_choice("color_transform", color_transform, COLOR_TRANSFORMS)
        root = resolve_data_root(data_root)
        found, missing = [], []
        for seq in selected:
            path = self.locate(seq, root, form=form, color_transform=color_transform)
            if path is None:
                missing.append(seq)
            else:
                found.append(Located(seq, path, form))
        if missing:
            lines = [
                f"{len(missing)} of {len(found) + len(missing)} requested sequences not found under data root {root} "
                f"(looked for {'PNG folders with frame_1.png' if form == 'png' else 'raw files'}):"
            ]
            for seq in missing:
                ds = self.datasets[seq.dataset]
                tried = ds.candidates(seq.name, root, form=form, color_transform=color_transform)
                lines.append(f"  {seq.dataset}/{seq.name}: tried {', '.join(str(p.relative_to(root)) for p in tried)}")
            raise InputError("\n".join(lines))
        return found


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The data root: the argument if given, else $HYTIP_DATA_ROOT; it must be an existing folder."""
    if data_root:
        root, origin = Path(data_root), "given"
    elif os.environ.get(DATA_ROOT_ENV):
        root, origin = Path(os.environ[DATA_ROOT_ENV]), f"from ${DATA_ROOT_ENV}"
    else:
        raise InputError(f"no data root: pass --data-root or set {DATA_ROOT_ENV} to the folder holding the test sets")
    root = root.expanduser()
    if not root.is_dir():
        raise InputError(f"data root {root} ({origin}) is not an existing folder")
    return root


# ---------------------------------------------------------------------------------------------------------------------
# Loading and validation


def load_catalog(extra: Iterable[str | Path] = (), *, bundled: bool = True) -> Catalog:
    """The bundled catalogue (unless bundled=False) merged with each extra YAML file in order."""
    files = ([BUNDLED_CATALOG] if bundled else []) + [Path(p) for p in extra]
    if not files:
        raise InputError("no catalogue file given")
    merged: dict[str, dict] = {}
    origins: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        doc = _read_yaml(path)
        _check_document(doc, path)
        for ds_name, ds in doc["datasets"].items():
            origins.setdefault((ds_name,), []).append(path)
            for seq_name in ds.get("sequences", {}):
                origins.setdefault((ds_name, seq_name), []).append(path)
            _merge(merged.setdefault(ds_name, {}), ds)
    return Catalog({name: _build_dataset(name, ds, origins) for name, ds in merged.items()}, tuple(files))


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which PyYAML would otherwise resolve silently to the last one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the catalogue ({exc.strerror or exc})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _template_ok(allowed: set[str]) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, str) or Path(v).is_absolute():
            return False
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError:
            return False
        return fields <= allowed

    return ok


_RAW_DIR = _template_ok({"dataset", "sequence", "stem"})
_PNG_DIR = _template_ok({"dataset", "sequence", "bt709"})

# field -> (what it must be, test); all of a level's fields are required except those in _OPTIONAL.
def _is_positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


_POSITIVE_INT = ("a positive integer", _is_positive_int)
_PROTOCOL_FIELDS = {k: _POSITIVE_INT for k in ("frames", "intra_period", "crop_multiple", "pad_multiple")}
_DATASET_FIELDS = {
    "description": ("a string", lambda v: isinstance(v, str)),
    "protocol": ("a mapping", lambda v: isinstance(v, dict)),
    "raw_dirs": (
        "a non-empty list of relative folder templates using only {dataset}, {sequence}, {stem}",
        lambda v: isinstance(v, list) and bool(v) and all(_RAW_DIR(x) for x in v),
    ),
    "png_dir": ("a relative folder template using only {dataset}, {sequence}, {bt709}", _PNG_DIR),
    "sequences": ("a non-empty mapping", lambda v: isinstance(v, dict) and bool(v)),
}
_SEQUENCE_FIELDS = {
    "files": (
        "a non-empty list of file names (no folders)",
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) and x and Path(x).name == x for x in v),
    ),
    "width": _POSITIVE_INT,
    "height": _POSITIVE_INT,
    "frames": _POSITIVE_INT,
    "fps": ("a positive number", lambda v: (_is_int(v) or isinstance(v, float)) and v > 0),
    "pix_fmt": (f"one of {', '.join(PIX_FMTS)}", lambda v: v in PIX_FMTS),
    "scene_cuts": ("a list of positive integers", lambda v: isinstance(v, list) and all(map(_is_positive_int, v))),
}
_OPTIONAL = {"description", "scene_cuts"}


def _check_fields(mapping: Any, spec: dict, where: str) -> None:
    """Types and unknown keys of one level as written in one file; required fields are checked after merging."""
    if not isinstance(mapping, dict):
        raise InputError(f"{where}: must be a mapping, found {_show(mapping)}")
    unknown = [k for k in mapping if k not in spec]
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(spec)}")
    for key, value in mapping.items():
        what, ok = spec[key]
        if not ok(value):
            raise InputError(f"{where}: '{key}' must be {what}, found {_show(value)}")


def _check_document(doc: Any, path: Path) -> None:
    if not isinstance(doc, dict) or set(doc) != {"datasets"}:
        found = f"keys {', '.join(map(repr, doc))}" if isinstance(doc, dict) else _show(doc)
        raise InputError(f"{path}: the top level must be a mapping with the single key 'datasets', found {found}")
    if not isinstance(doc["datasets"], dict) or not doc["datasets"]:
        raise InputError(
            f"{path}: 'datasets' must be a non-empty mapping of dataset name to dataset, found {_show(doc['datasets'])}"
        )
    for ds_name, ds in doc["datasets"].items():
        where = f"{path}: dataset {ds_name!r}"
        if not isinstance(ds_name, str):
            raise InputError(f"{where}: dataset names must be strings (quote it in the YAML)")
        _check_fields(ds, _DATASET_FIELDS, where)
        if "protocol" in ds:
            _check_fields(ds["protocol"], _PROTOCOL_FIELDS, f"{where}, protocol")
        for seq_name, seq in ds.get("sequences", {}).items():
            if not isinstance(seq_name, str):
                raise InputError(f"{where}: sequence name {seq_name!r} must be a string (quote it in the YAML)")
            _check_fields(seq, _SEQUENCE_FIELDS, f"{where}, sequence {seq_name!r}")


def _merge(dst: dict, src: dict) -> None:
    """Mappings merge key by key; anything else (lists included) replaces."""
    for key, value in src.items():
        if isinstance(value, dict):
            if not isinstance(dst.get(key), dict):
                dst[key] = {}
            _merge(dst[key], value)
        else:
            dst[key] = value


def _require(mapping: dict, spec: dict, where: str) -> None:
    missing = [k for k in spec if k not in mapping and k not in _OPTIONAL]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")


def _build_dataset(name: str, ds: dict, origins: dict[tuple[str, ...], list[Path]]) -> Dataset:
    ds_files = tuple(origins[(name,)])
    where = f"{_names(ds_files)}: dataset {name!r}"
    _require(ds, _DATASET_FIELDS, where)
    _require(ds["protocol"], _PROTOCOL_FIELDS, f"{where}, protocol")
    protocol = Protocol(**ds["protocol"])
    if protocol.frames % protocol.intra_period:
        raise InputError(
            f"{where}, protocol: frames ({protocol.frames}) must be a multiple of "
            f"intra_period ({protocol.intra_period})"
        )
    sequences = {}
    for seq_name, seq in ds["sequences"].items():
        seq_files = tuple(origins[(name, seq_name)])
        seq_where = f"{_names(seq_files)}: dataset {name!r}, sequence {seq_name!r}"
        _require(seq, _SEQUENCE_FIELDS, seq_where)
        sequences[seq_name] = s = Sequence(
            name=seq_name, dataset=name, files=tuple(seq["files"]), width=seq["width"], height=seq["height"],
            frames=seq["frames"], fps=seq["fps"], pix_fmt=seq["pix_fmt"], scene_cuts=tuple(seq.get("scene_cuts", ())),
            protocol=protocol, sources=seq_files,
        )
        _check_sequence(s, seq_where)
    return Dataset(name, ds.get("description", ""), protocol, tuple(ds["raw_dirs"]), ds["png_dir"], sequences, ds_files)


def _check_sequence(s: Sequence, where: str) -> None:
    """Consistency between fields, once the merged entry is complete."""
    if s.chroma == "420" and (s.width % 2 or s.height % 2):
        raise InputError(f"{where}: {s.pix_fmt} needs an even width and height, found {s.width}x{s.height}")
    if list(s.scene_cuts) != sorted(set(s.scene_cuts)) or any(c > s.frames for c in s.scene_cuts):
        raise InputError(
            f"{where}: scene_cuts must increase strictly and lie in 1..{s.frames} (frames), found {list(s.scene_cuts)}"
        )
    if s.frames < s.protocol.frames:
        raise InputError(f"{where}: {s.frames} frames, fewer than the protocol's {s.protocol.frames}")
    if s.width < s.protocol.crop_multiple or s.height < s.protocol.crop_multiple:
        raise InputError(f"{where}: {s.width}x{s.height} is smaller than the crop multiple {s.protocol.crop_multiple}")


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _names(paths: Iterable[Path]) -> str:
    return " + ".join(str(p) for p in paths)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{what} must be one of {', '.join(choices)}, found {value!r}")
