"""The sweep definition: codecs x sequences x rate points x colour transforms under one protocol.

A YAML file (examples in configs/) or CLI flags give it; `expand()` turns it into one `JobSpec` per
(codec, dataset, sequence, colour transform, rate point), and `preflight()` reports every missing file, checkpoint
or encoder of all jobs at once, before anything runs. Schema (every key optional except codecs and a source):

    codecs:                 # HyTIP: one entry per checkpoint (metric model); conventional: one per encoder
      - {codec: hytip, model: PSNR-RGB}   # checkpoint: default models/PSNR-RGB.pth.tar or the fetch-weights cache;
                                          # kernels: exact (default), fast, bf16 or tf32 (estimated rates)
      - {codec: x265, qps: [22, 27, 32, 37], mode: yuv420, threads: 1}
      - {codec: vtm, encoder_app: ..., decoder_app: ..., cfg: ...}
    datasets: [UVG, HEVC-B]            # from datasets.yaml (plus catalogs:); or
    sequences: {UVG: [Beauty]}         #   only these sequences of a dataset
    input: {path: bundled, name: bbb, dataset: clip}   # one file instead of datasets (a raw .yuv needs width,
                                                       # height, pix_fmt, fps)
    rate_points: [{i_quality: 0, qp: 0}, ...]          # HyTIP (default: bench.codecs.hytip_codec.DEFAULT_RATE_POINTS);
                                                       # or match / dense (bench.sweep.rate_selection)
    color_transforms: [BT601, BT709]   # native-RGB sources (HEVC-RGB) are coded once, as native-RGB
    protocol: {frames: 96, intra_period: 32, crop_multiple: 64, scene_cuts: true}   # or crop_size: [448, 256];
                                       # color_filter: nearest|bilinear|bicubic|ffmpeg overrides the transform's
    rate_mode: estimated               # or real: entropy-coded streams, decoded and checked
    metrics: [vmaf, xpsnr]             # optional, off by default (about 0.07 s per 1080p frame): VMAF and/or XPSNR
                                       # per frame besides PSNR/MS-SSIM (bench.measure.video_metrics); in the job hash
    data_root: ...                     # default $HYTIP_DATA_ROOT
    execution: {devices: auto, threads: null, encoder_jobs: 1, complexity_counters: [ptflops]}   # or [ptflops, fvcore]
                                       # rate_point_batch: auto (4 on a GPU, 1 on the CPU) or N: HyTIP estimated rate
                                       # points of a sequence coded as one batch
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from bench.codecs.base import RatePoint, SourceSpec
from bench.codecs.encoders import ENCODERS
from bench.codecs.hytip_codec import DEFAULT_RATE_POINTS, RATE_MODES
from bench.codecs.registry import make_codec
from bench.codecs.weights import find_checkpoint
from bench.data.catalog import COLOR_TRANSFORMS, load_catalog, resolve_data_root
from bench.data.clips import bundled_clip_path
from bench.data.colour import FILTERS, ColourSpec
from bench.data.protocol import CROP_FACTOR, GOP_SIZE, TEST_FRAMES
from bench.data.readers import open_source
from bench.errors import BenchError, InputError
from bench.measure.video_metrics import check_ffmpeg, check_metrics
from bench.sweep.rate_selection import RateSelection, parse_rate_points

NATIVE_RGB = "native-RGB"
TOP_KEYS = {"name", "codecs", "datasets", "sequences", "input", "rate_points", "color_transforms", "protocol",
            "rate_mode", "data_root", "catalogs", "execution", "metrics"}
PROTOCOL_KEYS = ("frames", "intra_period", "crop_multiple", "crop_size", "scene_cuts", "color_filter")
EXECUTION_KEYS = {"devices", "threads", "encoder_jobs", "complexity_counters", "rate_point_batch"}
CODEC_KEYS = {"codec", "model", "checkpoint", "threads", "kernels", "qps", "mode", "encoder_app", "decoder_app", "cfg"}


@dataclass
class SweepConfig:
    codecs: list[dict]
    datasets: list[str] = field(default_factory=list)
    sequences: dict[str, list[str]] = field(default_factory=dict)
    input: dict | None = None
    rate_points: list[dict] | str | dict | None = None
    color_transforms: list[str] = field(default_factory=lambda: list(COLOR_TRANSFORMS))
    protocol: dict = field(default_factory=dict)
    rate_mode: str = "estimated"
    data_root: str | None = None
    catalogs: list[str] = field(default_factory=list)
    execution: dict = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)   # vmaf, xpsnr (bench.measure.video_metrics.VIDEO_METRICS)
    name: str = "sweep"

    @classmethod
    def from_yaml(cls, path) -> "SweepConfig":
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the sweep config ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(doc, dict):
            raise InputError(f"{path}: a sweep config is a mapping (see configs/)")
        unknown = sorted(set(doc) - TOP_KEYS)
        if unknown:
            raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(TOP_KEYS))}")
        try:
            check_metrics(doc.get("metrics") or [])
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        base = path.parent
        for entry in doc.get("codecs") or []:
            for key in ("checkpoint", "encoder_app", "decoder_app", "cfg"):  # relative to the config's folder
                if isinstance(entry, dict) and entry.get(key) and not Path(entry[key]).is_absolute():
                    entry[key] = str(base / entry[key]) if (base / entry[key]).exists() else entry[key]
        return cls(**doc)

    def validate(self) -> None:
        if not self.codecs:
            raise InputError("the sweep has no codecs (give codecs: in the config or --codecs)")
        for entry in self.codecs:
            if not isinstance(entry, dict) or "codec" not in entry:
                raise InputError(f"codec entry {entry!r}: expected a mapping with a 'codec' key")
            unknown = sorted(set(entry) - CODEC_KEYS)
            if unknown:
                raise InputError(f"codec {entry['codec']}: unknown key(s) {', '.join(unknown)}")
            if entry["codec"] != "hytip" and entry["codec"] not in ENCODERS:
                raise InputError(f"unknown codec {entry['codec']!r}; expected hytip or one of {', '.join(ENCODERS)}")
            if entry["codec"] != "hytip":   # a QP the encoder would clamp would label a point it did not code
                low, high = ENCODERS[entry["codec"]].qp_range
                bad = [q for q in entry.get("qps") or () if isinstance(q, bool) or not isinstance(q, int)
                       or not low <= q <= high]
                if bad:
                    raise InputError(f"codec {entry['codec']}: QP {', '.join(map(str, bad))} outside its range "
                                     f"{low}..{high}")
            kernels = entry.get("kernels", "exact")   # its value is HytipCodec.check's (preflight)
            if kernels != "exact" and self.rate_mode == "real":
                raise InputError(f"codec {entry['codec']}: the {kernels} kernels are for estimated rates; real "
                                 "bitstreams are coded with the exact kernels")
        for key, value in self.protocol.items():
            if key not in PROTOCOL_KEYS:
                raise InputError(f"protocol: unknown key {key!r}; expected {', '.join(PROTOCOL_KEYS)}")
            if key == "crop_size":
                if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(
                        isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 16 == 0 for v in value)):
                    raise InputError(f"protocol crop_size: expected [width, height], multiples of 16, found {value!r}")
            elif key == "color_filter":
                if value not in FILTERS:
                    raise InputError(f"protocol color_filter {value!r}: expected one of {', '.join(FILTERS)}")
            elif key != "scene_cuts" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"protocol {key}: expected a positive integer, found {value!r}")
        if self.rate_mode not in RATE_MODES:
            raise InputError(f"rate_mode {self.rate_mode!r}: expected one of {', '.join(RATE_MODES)}")
        for ct in self.color_transforms:
            if ct not in COLOR_TRANSFORMS:
                raise InputError(f"colour transform {ct!r}: expected one of {', '.join(COLOR_TRANSFORMS)}")
        unknown = sorted(set(self.execution) - EXECUTION_KEYS)
        if unknown:
            raise InputError(f"execution: unknown key(s) {', '.join(unknown)}; expected "
                             f"{', '.join(sorted(EXECUTION_KEYS))}")
        batch = self.execution.get("rate_point_batch", "auto")
        if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise InputError(f"execution rate_point_batch: expected auto or a positive integer, found {batch!r}")
        check_metrics(self.metrics)
        if not self.datasets and not self.input:
            raise InputError("the sweep has no sequences: give --dataset or --input (datasets: or input: in a config)")
        if self.selection.mode == "match":
            self.match_anchor()

    @property
    def selection(self) -> RateSelection:
        return parse_rate_points(self.rate_points)

    def match_anchor(self) -> int:
        """The index in codecs of the anchor that rate points are matched to (named, else vtm, else vvenc)."""
        names = [entry["codec"] for entry in self.codecs]
        wanted = self.selection.anchor
        for name in ([wanted] if wanted else ["vtm", "vvenc"]):
            if name in names:
                if names.count(name) > 1:
                    raise InputError(f"rate_points match: the anchor {name} appears {names.count(name)} times in "
                                     "codecs; keep one")
                return names.index(name)
        if wanted:
            raise InputError(f"rate_points match: the anchor {wanted!r} is not among the sweep's codecs "
                             f"({', '.join(names)}); add it, its own rate points are coded first")
        raise InputError("rate_points match: no anchor among the sweep's codecs; add vtm or vvenc, or name one "
                         "(rate_points: {mode: match, anchor: x265}, --match-anchor x265)")


@dataclass(frozen=True)
class JobSpec:
    codec: dict            # codec spec (bench.codecs.registry)
    source: SourceSpec
    rate: RatePoint
    color_transform: str   # BT601, BT709 or native-RGB
    colour: ColourSpec
    identity: dict         # what the result depends on besides source, rate and colour
    rate_selection: str = "fixed"   # how the rate point was chosen (bench.sweep.rate_selection); not in the hash
    metrics: tuple[str, ...] = ()   # VMAF/XPSNR measured besides (bench.measure.video_metrics); in the hash if any

    @property
    def frames(self) -> int:
        return self.source.frames


def codec_objects(config: SweepConfig, problems: list | None = None) -> list:
    """The configured codecs, each with the rate points it is swept over (before matching: its protocol's);
    `problems` as for codec_plans."""
    return [(codec, rates) for codec, rates, _ in codec_plans(config, problems)]


def codec_plans(config: SweepConfig, problems: list | None = None) -> list:
    """(codec, rate points, protocol rate points) per configured codec: dense curves add points to the protocol's.
    A codec that cannot be made (no checkpoint, an unknown encoder) raises, or with `problems` is left out and its
    error added there, so that preflight reports it beside every other problem."""
    out = []
    for entry in config.codecs:
        try:
            out.append(_codec_plan(config, entry))
        except BenchError as exc:
            if problems is None:
                raise
            problems.append(exc)
    return out


def _codec_plan(config: SweepConfig, entry: dict) -> tuple:
    threads = config.execution.get("threads")
    selection = config.selection
    if entry["codec"] == "hytip":
        model = entry.get("model", "PSNR-RGB")
        checkpoint = entry.get("checkpoint") or find_checkpoint(model)
        if not checkpoint:
            raise InputError(f"hytip {model}: no checkpoint given (checkpoint: or --checkpoint) and none in "
                             f"models/{model}.pth.tar or the cache (run_bench.py fetch-weights)")
        codec = make_codec({"kind": "hytip", "checkpoint": str(checkpoint), "model": model,
                            "threads": entry.get("threads", threads), "kernels": entry.get("kernels", "exact")})
        rates = list(selection.fixed) or [RatePoint(q, i) for i, q in DEFAULT_RATE_POINTS]
    else:
        options = {k: entry[k] for k in ("threads", "encoder_app", "decoder_app", "cfg") if entry.get(k)}
        codec = make_codec({"kind": "conventional", "encoder": entry["codec"],
                            "mode": entry.get("mode", "yuv420"), "options": options})
        rates = [RatePoint(int(q)) for q in entry.get("qps") or codec.default_rates]
    protocol = rates
    if selection.mode == "dense":
        axis = codec.rate_axis
        rates = [axis.point(v) for v in selection.dense_values(axis, [axis.value(r) for r in protocol])]
    return codec, rates, protocol


def sources(config: SweepConfig) -> list[SourceSpec]:
    proto = config.protocol
    if config.input:
        spec = config.input
        path = bundled_clip_path() if spec.get("path") == "bundled" else Path(spec["path"])
        with open_source(path, width=spec.get("width"), height=spec.get("height"), pix_fmt=spec.get("pix_fmt")) as probe:
            fps = spec.get("fps") or probe.fps
            if not fps:
                raise InputError(f"{path}: the file states no frame rate; give fps")
            return [SourceSpec(spec.get("dataset", "custom"), spec.get("name") or path.stem, str(path), probe.width,
                               probe.height, probe.pix_fmt, float(fps), probe.bit_depth, not probe.is_yuv,
                               int(proto.get("frames", TEST_FRAMES)), int(proto.get("intra_period", GOP_SIZE)),
                               tuple(spec.get("scene_cuts", ())), int(proto.get("crop_multiple", CROP_FACTOR)),
                               _crop_size(proto)).check()]
    catalog = load_catalog(config.catalogs)
    resolve_data_root(config.data_root)  # one error for a missing root, not one per dataset
    located, missing = [], []
    for dataset in config.datasets:  # every dataset's missing files in one error
        try:
            located += catalog.resolve(dataset, config.sequences.get(dataset), data_root=config.data_root)
        except InputError as exc:
            missing.append(f"{dataset}: {exc}")
    if missing:
        raise InputError("\n".join(missing))
    out = []
    for item in located:
        seq = item.sequence
        frames = int(proto.get("frames", seq.protocol.frames))
        cuts = tuple(c for c in seq.scene_cuts if c <= frames) if proto.get("scene_cuts", True) else ()
        out.append(SourceSpec(seq.dataset, seq.name, str(item.path), seq.width, seq.height, seq.pix_fmt,
                              float(seq.fps), seq.bit_depth, seq.is_rgb or seq.chroma != "420", frames,
                              int(proto.get("intra_period", seq.protocol.intra_period)), cuts,
                              int(proto.get("crop_multiple", seq.protocol.crop_multiple)), _crop_size(proto)).check())
    return out


def _crop_size(protocol: dict) -> tuple[int, int] | None:
    size = protocol.get("crop_size")
    return None if size is None else (int(size[0]), int(size[1]))


def transforms_of(config: SweepConfig, source: SourceSpec) -> list[str]:
    return [NATIVE_RGB] if source.rgb else config.color_transforms


def colour_of(config: SweepConfig, transform: str) -> ColourSpec:
    colour = ColourSpec.for_protocol("BT709" if transform == NATIVE_RGB else transform)
    if config.protocol.get("color_filter"):  # another chroma filter than the transform's own
        colour = replace(colour, filter=config.protocol["color_filter"])
    return colour


def expand(config: SweepConfig, chosen: dict | None = None, only: int | None = None) -> list[JobSpec]:
    """Every job of the sweep, ordered so that each codec's jobs of one sequence are adjacent. ``chosen`` (rate
    matching): {(codec index, dataset, sequence, colour transform): rate points} replaces a codec's protocol points;
    ``only``: the jobs of that codec index alone."""
    config.validate()
    plans = codec_plans(config)
    selection = config.selection
    metrics = check_metrics(config.metrics)
    jobs = []
    for source in sources(config):
        for index, (codec, rates, protocol) in enumerate(plans):
            if only is not None and index != only:
                continue
            identity = codec.identity()
            for ct in transforms_of(config, source):
                picked = (chosen or {}).get((index, source.dataset, source.name, ct))
                for rate in picked or rates:
                    if picked:
                        how = selection.matched_text(config.codecs[config.match_anchor()]["codec"])
                    elif selection.mode == "dense":
                        how = "dense, protocol" if rate in protocol else "dense"
                    else:
                        how = "fixed"
                    jobs.append(JobSpec(codec.spec(), source, rate, ct, colour_of(config, ct), identity, how,
                                        metrics))
    return jobs


def preflight(config: SweepConfig) -> list[BenchError]:
    """Every problem that would stop a job (codec, checkpoint, encoder, source file), all at once."""
    problems = []
    try:
        config.validate()
    except BenchError as exc:
        return [exc]
    codecs = codec_objects(config, problems)
    for codec, _ in codecs:
        try:
            codec.check()
        except BenchError as exc:
            problems.append(exc)
    try:
        check_ffmpeg(check_metrics(config.metrics))
    except BenchError as exc:
        problems.append(exc)
    try:
        found = sources(config)
    except BenchError as exc:
        problems.append(exc)
        found = []
    for source in found:
        for codec, _ in codecs:
            try:
                codec.check_source(source)
            except BenchError as exc:
                problems.append(exc)
    return problems
