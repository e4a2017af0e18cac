"""The HyTIP module tree is the checkpoint interface: its state dict must equal the release's (all 1193 keys
of tests/data/golden/manifest.json, after dropping ``.module.``), with the same shapes and dtypes; and the
P-frame step rejects inconsistent inputs with a clear error."""
import json
from pathlib import Path

import pytest
import torch

from hytip.model import HyTIP, TemporalState
from hytip.motion import PFrameInputError

MANIFEST = json.loads((Path(__file__).parent / "data" / "golden" / "manifest.json").read_text())["entries"]


@pytest.fixture(scope="module")
def model():
    return HyTIP().eval()


def test_state_dict_equals_manifest(model):
    expected = {e["key"]: (tuple(e["shape"]), "torch." + e["dtype"]) for e in MANIFEST}
    got = {k: (tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()}
    assert len(expected) == 1193
    assert sorted(got.keys() - expected.keys()) == [], "keys the release does not have"
    assert sorted(expected.keys() - got.keys()) == [], "release keys we do not have"
    assert {k: v for k, v in got.items() if v != expected[k]} == {}, "shape/dtype mismatches"


def test_pframe_keys_in_release_order(model):
    """MENet / CondMotion / Residual children are registered in the release's order."""
    pframe = ("MENet.", "CondMotion.", "Residual.")
    assert [k for k in model.state_dict() if k.startswith(pframe)] == \
        [e["key"] for e in MANIFEST if e["key"].startswith(pframe)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(qp=64), "QP: expected an integer in 0..63, found 64"),
    (dict(predict=True), "predict=True needs state.ref_flow"),
    (dict(state=TemporalState(ref_mv_y=torch.zeros(1, 64, 2, 2))), "both given or both None"),
    (dict(x=torch.zeros(1, 3, 24, 32)), r"coding frame: expected \[B, 3, H, W\] with H, W multiples of 16"),
])
def test_pframe_input_errors(model, kwargs, message):
    args = dict(ref_frame=torch.zeros(1, 3, 32, 32), x=torch.zeros(1, 3, 32, 32), state=TemporalState(),
                frame_idx=1, qp=0, predict=False)
    args.update(kwargs)
    with torch.no_grad(), pytest.raises(PFrameInputError, match=message):
        model.forward_pframe(**args)
