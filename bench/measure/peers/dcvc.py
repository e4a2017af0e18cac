"""Adapters for the DCVC family (microsoft/DCVC, folder DCVC-family/<name>): DCVC-TCM, DCVC-HEM, DCVC-DC and DCVC-FM.

Each imports the user's checkout (``src`` of the peer's folder), builds the model without weights, runs the model's
own ``forward_one_frame`` as the encode path and its own ``decompress`` as the decode path, with the entropy
decoder standing aside: its bit estimators and Gaussian coder hand out all-zero latents, which needs neither the
C++ extensions nor a bitstream. The counted P-frame is the GOP's second (the release scripts' frame index 2).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from bench.measure.peers.base import PeerAdapter

DCVC = "microsoft/DCVC"
ZERO_LATENTS = ("decode", "the model's decompress, its entropy decoder handing out all-zero latents (not run, not "
                          "counted)")
COUNTED_FRAME = 2


class _NoStream:
    """The entropy coder while the decoder runs on zero latents: asked for nothing, it does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def zero_latents(model: nn.Module):
    """The model's bit estimators and Gaussian coder decode all-zero latents of the shapes they are asked for."""
    device = next(model.parameters()).device
    coders = []
    for name in ("bit_estimator_z", "bit_estimator_z_mv"):
        estimator = getattr(model, name, None)
        if estimator is not None:
            estimator.decode_stream = (lambda size, *_, channel=estimator.channel, **__:
                                       torch.zeros(1, channel, size[0], size[1], device=device))
            coders.append(estimator)
    model.gaussian_encoder.decode_stream = lambda scales, *_, **__: torch.zeros_like(scales)
    coders.append(model.gaussian_encoder)
    entropy_coder, model.entropy_coder = model.entropy_coder, _NoStream()
    try:
        yield
    finally:
        for coder in coders:
            del coder.decode_stream
        model.entropy_coder = entropy_coder


class _NoLoss(nn.Module):
    """DCVC-TCM's forward_one_frame also computes MS-SSIM losses for training; a codec does not."""

    def forward(self, *_):
        return torch.zeros(())


class DCVCTCM(PeerAdapter):
    name = "DCVC-TCM"
    origin = f"{DCVC} (DCVC-family/DCVC-TCM)"
    subfolder = "DCVC-family/DCVC-TCM"
    entry_points = ("src.models.video_net_dmc:DMC",)
    notes = (ZERO_LATENTS, ("encode", "forward_one_frame without its two training MS-SSIM losses (stood in for)"),
             ("parameters", "the P-frame model's only: the width of DCVC-TCM's I-frame model (IntraNoAR) is read from "
                            "its checkpoint, so it is not built"))

    def build(self, code):
        model = code.entry["src.models.video_net_dmc:DMC"]()
        model.ms_ssim_loss = _NoLoss()
        return model, None

    def initial_state(self, model, frame):
        return {"ref_frame": frame, "ref_feature": None}

    def encode(self, model, x, state):
        out = model.forward_one_frame(x, state["ref_frame"], state["ref_feature"])
        return {"ref_frame": out["recon_image"], "ref_feature": out["feature"]}

    def decode(self, model, frame, state):
        with zero_latents(model):
            return model.decompress(state["ref_frame"], state["ref_feature"], None, frame.shape[2], frame.shape[3])

    def buffer(self, state):
        return state


class _DPBAdapter(PeerAdapter):
    """DCVC-HEM, -DC and -FM keep a decoded picture buffer dict (``dpb``) between frames."""
    dpb_keys = ("ref_frame", "ref_feature", "ref_y", "ref_mv_y")
    notes = (ZERO_LATENTS,)

    def build(self, code):
        video, image = (code.entry[point] for point in self.entry_points)
        return video(), image()

    def initial_state(self, model, frame):
        return {key: frame if key == "ref_frame" else None for key in self.dpb_keys}

    def buffer(self, state):
        return state


class DCVCHEM(_DPBAdapter):
    name = "DCVC-HEM"
    origin = f"{DCVC} (DCVC-family/DCVC-HEM)"
    subfolder = "DCVC-family/DCVC-HEM"
    entry_points = ("src.models.video_model:DMC", "src.models.image_model:IntraNoAR")

    def encode(self, model, x, state):
        return model.forward_one_frame(x, state, mv_y_q_scale=1.0, y_q_scale=1.0)["dpb"]

    def decode(self, model, frame, state):
        with zero_latents(model):
            return model.decompress(state, None, frame.shape[2], frame.shape[3], 1.0, 1.0)["dpb"]


class DCVCDC(_DPBAdapter):
    name = "DCVC-DC"
    origin = f"{DCVC} (DCVC-family/DCVC-DC)"
    subfolder = "DCVC-family/DCVC-DC"
    entry_points = ("src.models.video_model:DMC", "src.models.image_model:IntraNoAR")
    dpb_keys = ("ref_frame", "ref_feature", "ref_mv_feature", "ref_y", "ref_mv_y")

    def encode(self, model, x, state):
        return model.forward_one_frame(x, state, q_in_ckpt=True, q_index=0, frame_idx=COUNTED_FRAME)["dpb"]

    def decode(self, model, frame, state):
        with zero_latents(model):
            return model.decompress(state, None, frame.shape[2], frame.shape[3], True, 0, COUNTED_FRAME)["dpb"]


class DCVCFM(_DPBAdapter):
    name = "DCVC-FM"
    origin = f"{DCVC} (DCVC-family/DCVC-FM)"
    subfolder = "DCVC-family/DCVC-FM"
    entry_points = ("src.models.video_model:DMC", "src.models.image_model:DMCI")
    dpb_keys = ("ref_frame", "ref_feature", "ref_mv_feature", "ref_y", "ref_mv_y")
    notes = (ZERO_LATENTS, ("all", "motion compensation through its torch fallback (grid_sample) where its CUDA "
                                   "kernel is not built; torch.cuda.synchronize (timing) is skipped on the CPU"))
    fa_idx = 0   # its feature adaptor for the GOP's frame 2 (test_helper's index_map)

    def encode(self, model, x, state):
        return model.forward_one_frame(x, state, q_index=0, fa_idx=self.fa_idx)["dpb"]

    def decode(self, model, frame, state):
        sps = {"qp": 0, "height": frame.shape[2], "width": frame.shape[3], "fa_idx": self.fa_idx}
        with zero_latents(model):
            return model.decompress(None, state, sps)["dpb"]


@contextlib.contextmanager
def _rt_aside(model: nn.Module):
    """DCVC-RT's entropy coder stands aside: all-zero latents for the decoder, nothing written by the encoder."""
    z, y = model.bit_estimator_z, model.gaussian_encoder
    stand_ins = {
        z: {"encode_z": lambda *_, **__: None, "decode_z": lambda *_, **__: None,
            "get_z": lambda size, device_, dtype: torch.zeros(1, z.channel, *size, device=device_, dtype=dtype)},
        y: {"encode_y": lambda *_, **__: None, "decode_y": lambda *_, **__: None,
            "get_y": lambda shape, numel, dtype, device_, *_: torch.zeros(shape, dtype=dtype, device=device_),
            "decode_and_get_y": lambda scales, dtype, device_: torch.zeros_like(scales)},
    }
    for owner, methods in stand_ins.items():
        for name, method in methods.items():
            setattr(owner, name, method)
    entropy_coder, model.entropy_coder = model.entropy_coder, _NoStream()
    try:
        yield
    finally:
        for owner, methods in stand_ins.items():
            for name in methods:
                delattr(owner, name)
        model.entropy_coder = entropy_coder


class DCVCRT(PeerAdapter):
    """DCVC-RT keeps its decoded picture buffer inside the model (``model.dpb``, one RefFrame); the state here is a
    copy of that list, put back before each frame."""
    name = "DCVC-RT"
    origin = f"{DCVC} (DCVC-family/DCVC-RT)"
    subfolder = "DCVC-family/DCVC-RT"
    entry_points = ("src.models.video_model:DMC", "src.models.image_model:DMCI")
    notes = (("encode", "compress, its entropy coder standing aside (DCVC-RT has no separate estimation forward; its "
                        "encoder does not synthesise the frame)"),
             ("decode", "decompress, its entropy decoder handing out all-zero latents (not run, not counted)"),
             ("all", "its torch fallback (what runs on the CPU): on CUDA its kernels fold the encoder's first 1x1 "
                     "convolution into the next one; without a GPU its CUDA streams and events are no-ops"),
             ("parameters", "buffer: the feature its encoder keeps; its decoder also keeps the decoded frame, which "
                            "the next P-frame does not read"))
    qp = 0

    def build(self, code):
        video, image = (code.entry[point] for point in self.entry_points)
        return video(), image()

    def initial_state(self, model, frame):
        model.clear_dpb()
        model.add_ref_frame(None, frame)
        return list(model.dpb)

    def encode(self, model, x, state):
        model.dpb = list(state)
        with _rt_aside(model):
            model.compress(x, self.qp)
        return list(model.dpb)

    def decode(self, model, frame, state):
        model.dpb = list(state)
        with _rt_aside(model):
            return model.decompress(None, {"ec_part": 0, "height": frame.shape[2], "width": frame.shape[3]},
                                    self.qp)

    def buffer(self, state):
        kept = state[0]
        return {name: t for name, t in (("ref_feature", kept.feature), ("ref_frame", kept.frame)) if t is not None}
