"""The official HyTIP checkpoints: where they are looked for, and fetching them into the user cache.

A download goes to `<name>.part` and resumes from it with an HTTP Range request after a cut connection; the finished
file must have the announced length and load strictly into our model (a truncated or foreign file is rejected and
removed) before it is renamed into place. Its sha256 is written beside it (`<name>.sha256`) for provenance: the
release publishes no checksum to verify against.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from bench import REPO_ROOT
from bench.errors import BenchError

RELEASE_URL = "https://github.com/NYCU-MAPL/HyTIP/releases/download/ModelWeights"
URL_ENV = "HYTIP_WEIGHTS_URL"       # another base URL (a mirror; the tests' local server)
CACHE_ENV = "HYTIP_BENCH_CACHE"     # the cache root (default ~/.cache/hytip-bench)
MODELS = ("PSNR-RGB", "MS-SSIM-RGB")
CHUNK = 1 << 20


class DownloadError(BenchError):
    """A checkpoint could not be fetched, or what arrived is not a HyTIP checkpoint."""


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "hytip-bench") / "weights"


def find_checkpoint(model: str) -> Path | None:
    """`models/<model>.pth.tar` of the checkout, else the user cache; None when neither has it."""
    for folder in (REPO_ROOT / "models", cache_dir()):
        path = folder / f"{model}.pth.tar"
        if path.is_file():
            return path
    return None


def _checked_sha256(path: Path) -> str:
    """The file's sha256, once it has loaded strictly into the model."""
    import hytip  # the model is built only to validate the file

    try:
        return hytip.load(path).checkpoint.sha256
    except hytip.HytipError as exc:
        raise DownloadError(f"downloaded {path.name} is not a HyTIP checkpoint ({exc}); removed it") from None


def fetch(model: str, *, progress: bool = True, timeout: float = 60) -> Path:
    """The checkpoint of `model` in the cache, downloaded (or resumed) if it is not there yet."""
    target = cache_dir() / f"{model}.pth.tar"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{os.environ.get(URL_ENV, RELEASE_URL).rstrip('/')}/{model}.pth.tar"
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=f"{model}.pth.tar",
                    disable=not progress) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        kept = part.stat().st_size if part.is_file() else 0
        resume = f"; {kept} bytes kept in {part}, the next try resumes there" if kept else ""
        raise DownloadError(f"cannot fetch {url} ({exc}){resume}") from None
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; the next try resumes")
    try:
        sha256 = _checked_sha256(part)
    except DownloadError:
        part.unlink()
        raise
    target.with_name(target.name + ".sha256").write_text(sha256 + "\n")
    os.replace(part, target)
    return target
