"""Peer codecs counted under HyTIP's protocol (bench.measure.peers, .peer_complexity, .counting).

CI cannot fetch microsoft/DCVC: the adapter mechanics run on a stand-in checkout (tests/data/peers/DCVC) with the
same entry points and a network small enough to count by hand; CompressAI's ssf2020, which is installed, is counted
for real. The real DCVC counts, checked by hand against the HyTIP README's figure, are in docs/peer-complexity.md.
"""
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import cli
from bench.errors import InputError
from bench.measure.counting import GRID_SAMPLE_TAPS, count_path, temporal_buffer_of
from bench.measure.peer_complexity import count_peer
from bench.measure.peers import PEERS, get_peer

STAND_IN = Path(__file__).parent / "data" / "peers" / "DCVC"
MEASURED = Path(__file__).parent.parent / "anchors" / "measured_complexity.json"
W, H = 128, 64


def _stand_in_macs(rule: str) -> tuple[int, int]:
    """The stand-in DCVC-DC by hand (ptflops' conventions: k*k*Cin*Cout per position, plus one per output value for
    the bias): a 4x4 stride-4 convolution 3 -> 4 (encoder only) and a 4x4 stride-4 transposed convolution 4 -> 3,
    whose positions are its input's (rule 'input') or its output's (rule 'output')."""
    latents = (H // 4) * (W // 4)
    analysis = 16 * 3 * 4 * latents + 4 * latents
    synthesis = 16 * 4 * 3 * (latents if rule == "input" else H * W) + 3 * H * W
    return analysis + synthesis, synthesis


@pytest.mark.parametrize("rule", ["input", "output"])
@pytest.mark.parametrize("source", [STAND_IN, STAND_IN / "DCVC-family" / "DCVC-DC"])
def test_stand_in_checkout_counted_by_hand(rule, source):
    peer = count_peer("DCVC-DC", source, W, H, rule)
    encode, decode = _stand_in_macs(rule)
    assert (peer.encode.macs, peer.decode.macs) == (encode, decode)
    assert peer.kmac_per_pixel("encode") == encode / (W * H) / 1e3
    assert (peer.encode.unseen, peer.decode.unseen) == ((), ())
    # parameters: conv 3*4*16 + 4, transposed conv 4*3*16 + 3; all of them adds the stand-in I-frame model's 20
    assert peer.model_size == 3 * 4 * 16 + 4 + 4 * 3 * 16 + 3
    assert peer.parameters_total == peer.model_size + 20
    assert peer.folder == str(STAND_IN / "DCVC-family" / "DCVC-DC")
    # kept after frame 1: frame 3@1, feature 2@1, mv feature 4@1/8, y 4@1/4, mv y 1@1/4
    assert {t.name: (t.channels, t.scale) for t in peer.buffer.tensors} == {
        "ref_frame": (3, "1/1"), "ref_feature": (2, "1/1"), "ref_mv_feature": (4, "1/8"), "ref_y": (4, "1/4"),
        "ref_mv_y": (1, "1/4")}
    assert peer.buffer.total_channel_equivalent == 3 + 2 + 4 / 64 + 4 / 16 + 1 / 16
    assert "DCVC-family/DCVC-DC" in peer.origin and f"at {W}x{H}" in peer.protocol("decode")
    assert "src" not in sys.modules and not any(name.startswith("src.") for name in sys.modules)


def test_the_decoder_runs_on_zero_latents_and_the_entropy_decoder_not(monkeypatch):
    adapter = get_peer("DCVC-DC")
    model, _ = adapter.build(adapter.load(STAND_IN))
    frame = torch.ones(1, 3, H, W)
    state = adapter.encode(model, frame, adapter.initial_state(model, frame))
    dpb = adapter.decode(model, frame, state)
    (z, y), = model.decoded_latents
    assert z.shape == (1, 2, H // 64, W // 64) and y.shape == (1, 4, H // 4, W // 4)
    assert not z.any() and not y.any()
    assert torch.equal(dpb["ref_frame"], model.synthesis(y) + state["ref_frame"])
    with pytest.raises(RuntimeError, match="the entropy decoder ran"):   # the stand-ins are gone afterwards
        model.bit_estimator_z.decode_stream((1, 1), torch.float32, "cpu")
    assert model.entropy_coder is None


def test_a_callers_own_src_package_is_left_alone(tmp_path, monkeypatch):
    mine = tmp_path / "src"
    mine.mkdir()
    (mine / "__init__.py").write_text("WHOSE = 'the caller'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import src
    count_peer("DCVC-DC", STAND_IN, W, H)
    assert sys.modules["src"] is src and src.WHOSE == "the caller"
    del sys.modules["src"]


@pytest.mark.parametrize("name, source, message", [
    ("DCVC-DC", "missing", r"missing: no such folder \(expected your checkout of DCVC-DC's code\)"),
    ("DCVC-HEM", "root", r"not a checkout of DCVC-HEM's code: .*DCVC-family/DCVC-HEM or .* lacks "
                         r"src/models/video_model.py, src/models/image_model.py"),
    ("DCVC-TCM", "root", r"video_net_dmc.py: importing src.models.video_net_dmc failed: ModuleNotFoundError: "
                         r"No module named 'a_package_that_is_not_installed'"),
    ("DCVC-FM", "no-entry", r"image_model.py: no DMCI \(the entry point src.models.image_model:DMCI of DCVC-FM\)"),
])
def test_a_wrong_checkout_is_one_clear_error(tmp_path, name, source, message):
    if source == "no-entry":   # DCVC-FM's files, but its image model lacks the class the adapter builds
        folder = tmp_path / "DCVC-family" / "DCVC-FM" / "src" / "models"
        folder.mkdir(parents=True)
        (folder / "video_model.py").write_text("class DMC:\n    pass\n")
        (folder / "image_model.py").write_text("class IntraNoAR:\n    pass\n")
        source = tmp_path
    else:
        source = tmp_path / "missing" if source == "missing" else STAND_IN
    with pytest.raises(InputError, match=message):
        count_peer(name, source, W, H)
    assert "src" not in sys.modules


def test_size_must_be_a_multiple_of_the_peers_alignment():
    with pytest.raises(InputError, match="ssf2020 codes frames padded to a multiple of 128"):
        count_peer("ssf2020", None, 448, 256)
    with pytest.raises(InputError, match="installed compressai package; --source"):
        count_peer("ssf2020", STAND_IN, 128, 128)
    with pytest.raises(InputError, match="give the folder of your checkout of microsoft/DCVC"):
        count_peer("DCVC-DC", None, W, H)
    with pytest.raises(InputError, match="expected one of DCVC-TCM, DCVC-HEM, DCVC-DC, DCVC-FM, DCVC-RT, ssf2020"):
        get_peer("DCVC-XX")
    assert get_peer("dcvc-dc") is PEERS["DCVC-DC"]


@pytest.fixture(scope="module")
def ssf_counts():
    return {rule: count_peer("ssf2020", None, 256, 128, rule) for rule in ("input", "output")}


def test_ssf2020_counted_for_real(ssf_counts):
    """CompressAI's ScaleSpaceFlow, counted here: per pixel the same at 256x128 as at 512x256 (159.63 / 81.01
    kMAC/pixel, measured with this count, ptflops 0.7.5, rule 'input'); its transposed convolutions (motion, residual
    and four hyper decoders, stride 2) explain the 'output' rule's excess exactly."""
    from compressai.models.video import ScaleSpaceFlow

    counted = ssf_counts["input"]
    assert (round(counted.kmac_per_pixel("encode"), 2), round(counted.kmac_per_pixel("decode"), 2)) == (159.63, 81.01)
    bundled = next(c for c in json.loads(MEASURED.read_text())["configurations"] if c["codec"] == "ssf2020")
    # the bundled 1920x1024 count: the same per pixel but for about 120 MACs that do not grow with the frame
    assert (bundled["enc_kmac_per_pixel"], bundled["dec_kmac_per_pixel"]) == pytest.approx(
        (counted.kmac_per_pixel("encode"), counted.kmac_per_pixel("decode")), rel=1e-7)
    assert bundled["model_size"] == counted.model_size
    reference = ScaleSpaceFlow()
    assert counted.parameters_total == sum(p.numel() for p in reference.parameters())
    keyframe = sum(p.numel() for name in ("img_encoder", "img_decoder", "img_hyperprior")
                   for p in getattr(reference, name).parameters())
    assert counted.model_size == counted.parameters_total - keyframe
    assert [(t.name, t.channels, t.scale) for t in counted.buffer.tensors] == [("ref_frame", 3, "1/1")]
    assert counted.buffer.total_channel_equivalent == 3.0
    # the scale-space volume: a Gaussian blur by functional convolution, and a 3-D (trilinear) grid_sample
    assert {u.op for u in counted.encode.unseen} == {"conv (functional)", "grid_sample"}
    assert [u.macs for u in counted.encode.unseen if u.op == "grid_sample"] == [8 * 3 * 128 * 256]

    excess = []   # what counting transposed convolutions on output positions adds, from each one's shapes

    def book(module, inputs, output):
        per_position = module.kernel_size[0] * module.kernel_size[1] * module.in_channels * module.out_channels
        excess.append(per_position // module.groups * (output[0, 0].numel() - inputs[0][0, 0].numel()))

    hooks = [m.register_forward_hook(book) for m in reference.modules() if isinstance(m, nn.ConvTranspose2d)]
    adapter, frame = get_peer("ssf2020"), torch.ones(1, 3, 128, 256)
    with torch.no_grad():
        state = adapter.encode(reference, frame, adapter.initial_state(reference, frame))
        for path, run in (("encode", adapter.encode), ("decode", adapter.decode)):
            excess.clear()
            run(reference, frame, state)
            by_output = ssf_counts["output"]
            assert getattr(by_output, path).macs - getattr(counted, path).macs == sum(excess) > 0, path
    for hook in hooks:
        hook.remove()


def test_unseen_operations_are_booked_by_rule_and_seen_ones_not():
    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.weight = nn.Parameter(torch.ones(5, 4, 1, 1))

        def forward(self, x):
            y = self.conv(x)                                    # a module's own convolution: ptflops counts it
            z = F.conv2d(y, self.weight)                        # functional: 5*4 per output value, unseen
            grid = torch.zeros(1, 8, 16, 2)
            w = F.grid_sample(z, grid, mode="bilinear", align_corners=True)   # 4 taps per output value
            return w.flatten(2) @ torch.ones(8 * 16, 6)         # @: 128 per output value

    model = Mixed()
    x = torch.ones(1, 3, 8, 16)
    originals = (F.grid_sample, F.conv2d, torch.conv2d, torch.Tensor.__matmul__)
    count = count_path(model, lambda: model(x))
    assert (F.grid_sample, F.conv2d, torch.conv2d, torch.Tensor.__matmul__) == originals   # unpatched again
    assert count.macs == 27 * 4 * 128 + 4 * 128                 # the module convolution and its bias only
    assert {u.op: (u.calls, u.macs) for u in count.unseen} == {
        "conv (functional)": (1, 5 * 128 * 4), "grid_sample": (1, 5 * 128 * GRID_SAMPLE_TAPS["bilinear"]),
        "matmul (@)": (1, 5 * 6 * 128)}


def test_buffer_rule_on_synthetic_tensors():
    """The paper's unit: HyTIP's 7.875 and DCVC-DC's 55.75 from the shapes of what each keeps."""
    h, w = 64, 128
    def t(c, s):
        return torch.empty(1, c, h // s, w // s)
    hytip = temporal_buffer_of({"ref_frame": t(3, 1), "ref_flow": t(2, 1), "ref_feature": t(2, 1),
                                "ref_mv_feature": t(2, 4), "ref_y": t(128, 16), "ref_mv_y": t(64, 16)}, h, w, "test")
    dcvc_dc = temporal_buffer_of({"ref_frame": t(3, 1), "ref_feature": t(48, 1), "ref_mv_feature": t(64, 4),
                                  "ref_y": t(128, 16), "ref_mv_y": t(64, 16)}, h, w, "test")
    assert (hytip.total_channel_equivalent, dcvc_dc.total_channel_equivalent) == (7.875, 55.75)
    assert dcvc_dc.total_bytes_float32 == 55.75 * h * w * 4
    odd = temporal_buffer_of({"x": torch.empty(1, 2, 32, 32)}, h, w, "test")
    assert odd.tensors[0].scale == "1/2 x 1/4" and odd.total_channel_equivalent == 0.25
    with pytest.raises(ValueError, match=r"\[1, C, h, w\]"):
        temporal_buffer_of({"x": torch.empty(2, 3, 4, 4)}, h, w, "test")


def test_cli_prints_and_writes_a_configuration(tmp_path, capsys):
    out = tmp_path / "complexity.json"
    out.write_text(json.dumps({"configurations": [{"codec": "DCVC-DC", "stale": True}, {"codec": "HyTIP"}]}))
    assert cli.main(["complexity", "--peer", "dcvc-dc", "--source", str(STAND_IN), "--size", f"{W}x{H}",
                     "--deconv-rule", "output", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    encode, decode = _stand_in_macs("output")
    assert f"encode {encode}" in " ".join(printed.split()) and f"decode {decode}" in " ".join(printed.split())
    assert "per output position" in printed and f"wrote DCVC-DC into {out}" in printed
    configurations = json.loads(out.read_text())["configurations"]
    assert [c["codec"] for c in configurations] == ["HyTIP", "DCVC-DC"]
    entry = configurations[1]
    assert entry["enc_kmac_per_pixel"] == encode / (W * H) / 1e3 and entry["deconv_rule"] == "output"
    assert entry["temporal_buffer_channels"] == 3 + 2 + 4 / 64 + 4 / 16 + 1 / 16
    assert entry["source"].endswith("DCVC-family/DCVC-DC") and entry["size"] == f"{W}x{H}"

    assert cli.main(["complexity", "--source", str(STAND_IN)]) == 2
    assert "give --peer NAME with it" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert cli.main(["complexity", "--peer", "DCVC-DC", "--source", str(STAND_IN), "--size", f"{W}x{H}",
                     "--json", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: expected {\"configurations\": [...]}" in capsys.readouterr().err


def test_dcvc_rt_stand_in_runs_its_cuda_streams_as_no_ops_and_keeps_its_buffer_inside():
    """DCVC-RT keeps its decoded picture buffer in the model and wraps entropy coding in CUDA events and streams:
    the adapter puts the state back before each frame and, without a GPU, makes those no-ops (stand-in checkout)."""
    peer = count_peer("DCVC-RT", STAND_IN, W, H)
    positions = (H // 8) * (W // 8)   # everything runs on the 8x8-unshuffled frame
    encoder = (192 + 8) * 4 + 4        # 1x1 convolutions: Cin*Cout + bias per position
    decoder = (4 + 8) * 8 + 8
    adaptor = 8 * 8 + 8                # frame 2 reads frame 1's feature
    assert peer.encode.macs == (adaptor + encoder + decoder) * positions
    assert peer.decode.macs == (adaptor + decoder + 8 * 192 + 192) * positions
    assert [(t.name, t.channels, t.scale) for t in peer.buffer.tensors] == [("ref_feature", 8, "1/8")]
    assert peer.model_size == 192 * 8 + 8 + 8 * 8 + 8 + 200 * 4 + 4 + 12 * 8 + 8 + 8 * 192 + 192
    assert peer.parameters_total == peer.model_size + 9
    assert torch.cuda.Event.__module__.startswith("torch")   # the stand-ins are gone
