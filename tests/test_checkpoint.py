"""Checkpoint loading: the key mapping against the official loader's (manifest), the full strict load of the
golden checkpoint into HyTIP, and clear errors for files that do not fit."""
import hashlib
import io

import golden
import pytest
import torch
import torch.nn as nn

from hytip.checkpoint import CheckpointError, load_checkpoint, remap_state_dict
from hytip.entropy_models import GaussianConditional
from hytip.model import HyTIP


def test_remap_matches_official_loader_for_every_entry():
    # The manifest records, for all 1193 entries, the key the official main() produced from the raw key.
    entries = golden.load_manifest()["entries"]
    raw = {e["raw_checkpoint_key"]: torch.zeros(0) for e in entries}
    assert list(remap_state_dict(raw)) == [e["key"] for e in entries]


def test_remap_skips_legacy_mc_generate_and_keeps_unwrapped_names():
    raw = {"Residual.module.net.mc_generate_x.weight": torch.zeros(1),
           "criterion.module.w": torch.zeros(1),
           "if_model.module.net.q_basic_enc": torch.zeros(1)}
    assert list(remap_state_dict(raw)) == ["criterion.module.w", "if_model.net.q_basic_enc"]


def test_full_strict_load_of_golden_checkpoint():
    path = golden.golden_checkpoint_path()
    model = HyTIP()
    info = load_checkpoint(model, path)
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert info.num_tensors == len(raw) == 1193
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.epoch == 0
    loaded = model.state_dict()
    mapped = remap_state_dict(raw)
    table_buffers = [k for k in mapped if k.rsplit(".", 1)[-1] in GaussianConditional._TABLE_BUFFERS]
    assert len(table_buffers) == 8
    for key, value in mapped.items():
        if key not in table_buffers:
            assert torch.equal(loaded[key], value), key
    # update() filled the CDF tables that the checkpoint stores empty (SPEC §5.2: [64, 3133], 64, 64).
    gc = model.CondMotion.net.gaussian_conditional
    assert tuple(gc._quantized_cdf.shape) == (64, 3133)
    assert gc._offset.shape == gc._cdf_length.shape == (64,)
    # interpolate() built the 64 intra quality scales.
    assert model.if_model.net.q_scale_enc_fine.shape == (64,)


class _Wrap(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.if_model = _Wrap(nn.Conv2d(2, 3, 1))
        self.CondMotion = _Wrap(nn.Module())
        self.CondMotion.net.gaussian_conditional = GaussianConditional()


def _raw_state(model):
    """The model's state as a release checkpoint stores it (``module`` segment after the top-level name)."""
    return {k.replace(".", ".module.", 1): v.clone() for k, v in model.state_dict().items()}


def _save(tmp_path, obj, name="ckpt.pth.tar"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_tiny_roundtrip_and_filled_cdf_tables_accepted(tmp_path):
    src = _Tiny()
    src.CondMotion.net.gaussian_conditional.update()          # an "updated" checkpoint has filled tables
    path = _save(tmp_path, {"epoch": 3, "state_dict": _raw_state(src)})
    dst = _Tiny()
    info = load_checkpoint(dst, path)
    assert info.epoch == 3 and info.num_tensors == len(src.state_dict())
    assert torch.equal(dst.if_model.net.weight, src.if_model.net.weight)
    assert torch.equal(dst.CondMotion.net.gaussian_conditional._quantized_cdf,
                       src.CondMotion.net.gaussian_conditional._quantized_cdf)


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("if_model.module.net.bias"), "missing keys: if_model.net.bias"),
    (lambda sd: sd.update({"if_model.module.net.extra": torch.zeros(1)}), "unexpected keys: if_model.net.extra"),
    (lambda sd: sd.update({"if_model.module.net.weight": torch.zeros(3, 2, 3, 3)}),
     r"mis-shaped keys: if_model.net.weight \(checkpoint \[3, 2, 3, 3\], model \[3, 2, 1, 1\]\)"),
    (lambda sd: sd.update({"if_model.module.net.bias": [0.0, 1.0, 2.0]}), "not tensors: if_model.module.net.bias"),
])
def test_mismatching_checkpoint_names_file_and_keys(tmp_path, edit, message):
    sd = _raw_state(_Tiny())
    edit(sd)
    path = _save(tmp_path, {"epoch": 0, "state_dict": sd}, "bad.pth.tar")
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(_Tiny(), path)
    assert str(path) in str(err.value)


def test_foreign_truncated_and_missing_files(tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a checkpoint\n")
    buf = io.BytesIO()
    torch.save({"epoch": 0, "state_dict": _raw_state(_Tiny())}, buf)
    truncated = tmp_path / "cut.pth.tar"
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    for path in (foreign, truncated):
        with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint") as err:
            load_checkpoint(_Tiny(), path)
        assert str(path) in str(err.value)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(_Tiny(), tmp_path / "absent.pth.tar")


def test_checkpoint_without_state_dict(tmp_path):
    path = _save(tmp_path, {"epoch": 0, "model": {}}, "plain.pth")
    with pytest.raises(CheckpointError, match=r"expected a dict with a 'state_dict' entry, found \['epoch', 'model'\]"):
        load_checkpoint(_Tiny(), path)
