"""Adapter for CompressAI's ssf2020 (Agustsson et al., CVPR 2020, scale-space flow), from the installed compressai."""
from __future__ import annotations

import contextlib
import importlib.metadata

import torch

from bench.errors import InputError
from bench.measure.peers.base import Code, PeerAdapter

KEYFRAME = ("img_encoder", "img_decoder", "img_hyperprior")   # the I-frame coder inside the same model


@contextlib.contextmanager
def _zero_latents(model):
    """Both hyperpriors' entropy decoders hand out zero symbols: z = 0 and y = its predicted means."""
    device = next(model.parameters()).device
    patched = []
    for prior in (model.motion_hyperprior, model.res_hyperprior):
        bottleneck, conditional = prior.entropy_bottleneck, prior.gaussian_conditional
        bottleneck.decompress = (lambda strings, size, channels=bottleneck.channels, **_:
                                 torch.zeros(1, channels, *size, device=device))
        conditional.decompress = lambda strings, indexes, dtype=None, means=None: means
        patched += [bottleneck, conditional]
    try:
        yield
    finally:
        for module in patched:
            del module.decompress


class SSF2020(PeerAdapter):
    name = "ssf2020"
    align = 128   # its latents are at 1/16, its hyper-latents at 1/128 of the frame
    origin = "CompressAI (the installed package): compressai.zoo.ssf2020, compressai.models.video.ScaleSpaceFlow"
    notes = (("decode", "decode_inter, both hyperpriors' entropy decoders handing out zero symbols (not run, not "
                        "counted)"),
             ("encode", "forward_inter: motion and residual coders with their hyperpriors (no separate motion "
                        "estimation: the motion encoder reads both frames)"),
             ("parameters", "its P-frame parts: the img_* keyframe coder is left out of the model size, and in "
                            "all parameters"))

    def load(self, source):
        if source is not None:
            raise InputError(f"{self.name} comes from the installed compressai package; --source {source} is not "
                             "used for it")
        from compressai.models.video import ScaleSpaceFlow
        return Code({"ScaleSpaceFlow": ScaleSpaceFlow}, "installed package",
                    f"compressai {importlib.metadata.version('compressai')}")

    def build(self, code):
        return code.entry["ScaleSpaceFlow"](), None

    def initial_state(self, model, frame):
        return {"ref_frame": frame}

    def encode(self, model, x, state):
        return {"ref_frame": model.forward_inter(x, state["ref_frame"])[0]}

    def decode(self, model, frame, state):
        z = (frame.shape[2] // 128, frame.shape[3] // 128)   # 4 stride-2 analysis convolutions, 3 hyper ones
        strings = {"motion": [None, None], "residual": [None, None]}
        with _zero_latents(model):
            return model.decode_inter(state["ref_frame"], strings, {"motion": z, "residual": z})

    def buffer(self, state):
        return state

    def pframe_parameters(self, model):
        return sum(p.numel() for name, child in model.named_children() if name not in KEYFRAME
                   for p in child.parameters())
