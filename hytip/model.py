"""The top-level HyTIP model: intra coder, motion estimation, motion coder and inter coder (SPEC §0, §3).

Children and state-dict keys are those of the release's ``Pframe`` (minus the ``.module.`` segment that
``nn.DataParallel`` adds in the checkpoint): ``if_model.net.*``, ``MENet.net.*``, ``CondMotion.net.*``,
``Residual.net.*``.

``forward`` is one P-frame step (``forward_pframe``), so ``ptflops.get_model_complexity_info`` counts one
P-frame as the release does; ``ZeroLatentDecoder`` counts the decoder side only.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Protocol, Tuple

import torch
import torch.nn as nn

from hytip.gop import ALIGN_FACTOR
from hytip.inter import CheckerboardStep, Inter, frame_type_index
from hytip.intra import IntraCoder
from hytip.layers import warp
from hytip.motion import LatentPrior, Motion, PFrameInputError, check_qp
from hytip.spynet import MotionEstimator



@dataclass
class TemporalState:
    """What survives between P-frames besides the decoded reference frame (SPEC §6).

    All None right after an I-frame. ``ref_flow`` 2@1 and ``ref_feature`` 2@1 are the explicit/implicit
    full-resolution buffers; ``ref_mv_feature`` 2@1/4, ``ref_y`` 128@1/16 and ``ref_mv_y`` 64@1/16 the latent ones.
    """
    ref_flow: Optional[torch.Tensor] = None
    ref_feature: Optional[torch.Tensor] = None
    ref_y: Optional[torch.Tensor] = None
    ref_mv_feature: Optional[torch.Tensor] = None
    ref_mv_y: Optional[torch.Tensor] = None

    def tensors(self) -> Dict[str, torch.Tensor]:
        """The buffered tensors by name (those that are set)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class PFrameSymbols:
    """Everything the entropy coder needs for the 7 P-frame strings (mv_y, mv_z, y steps 0..3, z).

    mv_y: symbols round(mv_y − μ) with their (σ, μ) (CDF indexes = ``gaussian_conditional.build_indexes(σ)``);
    mv_z_hat, z_hat: integer hyper-latents coded with the BitEstimators; y_steps: one CheckerboardStep each.
    """
    mv_y_symbols: torch.Tensor
    mv_y_prior: LatentPrior
    mv_z_hat: torch.Tensor
    y_steps: List[CheckerboardStep]
    z_hat: torch.Tensor


@dataclass
class PFrameOutput:
    recon: torch.Tensor                      # decoded frame, clamped to [0, 1], at the input's size
    likelihoods: Tuple[torch.Tensor, ...]    # (mv_y, mv_z, y, z)
    flow: torch.Tensor                       # SPyNet flow (encoder side)
    flow_hat: torch.Tensor                   # decoded flow
    warped_frame: torch.Tensor               # reference warped by flow_hat (reported only)
    mc_frame: torch.Tensor                   # motion-compensated frame, unclamped
    mask: torch.Tensor
    state: TemporalState                     # buffers for the next P-frame
    symbols: PFrameSymbols


class LatentSource(Protocol):
    """Where a decoder gets its integer latents from (an entropy decoder, or zeros for MAC counting)."""

    def mv_z(self, shape: Tuple[int, ...]) -> torch.Tensor: ...

    def mv_y(self, prior: LatentPrior) -> torch.Tensor: ...

    def z(self, shape: Tuple[int, ...]) -> torch.Tensor: ...

    def y_step(self, step: int, scales: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


class _Slot(nn.Module):
    """Holds a coder as ``net`` so that keys read ``<child>.net.*`` as in the release."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net


def _check_frame(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % ALIGN_FACTOR or x.shape[-1] % ALIGN_FACTOR:
        raise PFrameInputError(f"{name}: expected [B, 3, H, W] with H, W multiples of {ALIGN_FACTOR}, "
                               f"found {tuple(x.shape)}")


def _latent_hw(frame: torch.Tensor, factor: int) -> Tuple[int, int]:
    h, w = frame.shape[-2:]
    return -(-h // factor), -(-w // factor)


class HyTIP(nn.Module):
    """HyTIP with the release's module tree. P-frames take frames padded to a multiple of 16."""

    def __init__(self):
        super().__init__()
        self.if_model = IntraCoder()
        self.MENet = MotionEstimator()
        self.CondMotion = _Slot(Motion())
        self.Residual = _Slot(Inter())

    @property
    def motion(self) -> Motion:
        return self.CondMotion.net

    @property
    def inter(self) -> Inter:
        return self.Residual.net

    @staticmethod
    def _temporal_inputs(ref_frame, state: TemporalState, predict: bool):
        """(ref_flow for the conditions, concat(ref_frame, ref_flow) for the motion prior) or Nones."""
        if not predict:
            return None, None
        if state.ref_flow is None:
            raise PFrameInputError("P-frame with predict=True needs state.ref_flow (the previous decoded flow)")
        return state.ref_flow, torch.cat((ref_frame, state.ref_flow), dim=1)

    def forward_pframe(self, ref_frame: torch.Tensor, x: torch.Tensor, state: TemporalState,
                       frame_idx: int, qp: int, predict: bool) -> PFrameOutput:
        """Code P-frame ``x`` against ``ref_frame`` (both [B,3,H,W], H and W multiples of 16) in estimation
        mode. ``predict`` is False on the first P-frame after an I-frame (no temporal prior); ``frame_idx``
        (position in the GOP) selects the frame-type adaptor.

        GOP bookkeeping stays with the caller, as in the release's test loop: start every GOP (and every
        scene-cut I-frame) with ``TemporalState()``, pass ``out.recon`` and ``out.state`` to the next
        P-frame. (The release also drops ``ref_feature`` when frame_idx % 32 == 1, which in its 32-frame
        GOPs is always the frame after an I-frame, where the state is empty anyway.)"""
        _check_frame("ref_frame", ref_frame)
        _check_frame("coding frame", x)
        qp = check_qp(qp)
        ref_flow, temporal_input = self._temporal_inputs(ref_frame, state, predict)
        flow = self.MENet(ref_frame, x)
        mo = self.motion(flow, qp, ref_flow, state.ref_mv_feature if predict else None,
                         temporal_input, state.ref_mv_y)
        del temporal_input      # read by the motion prior only (1080p: 38 MB less under the inter coder's peak)
        inter = self.inter(x, mo.flow_hat, ref_frame, qp, frame_type_index(frame_idx),
                           state.ref_feature, state.ref_y)
        return PFrameOutput(
            recon=inter.recon.clamp(0, 1),
            likelihoods=mo.likelihoods + inter.likelihoods,
            flow=flow,
            flow_hat=mo.flow_hat,
            warped_frame=warp(ref_frame, mo.flow_hat),
            mc_frame=inter.temporal_context.mc_frame,
            mask=inter.temporal_context.mask,
            state=TemporalState(ref_flow=mo.flow_hat, ref_feature=inter.ref_feature, ref_y=inter.ref_y,
                                ref_mv_feature=mo.ref_mv_feature, ref_mv_y=mo.ref_mv_y),
            symbols=PFrameSymbols(mo.mv_y_symbols, mo.mv_y_prior, mo.mv_z_hat, inter.y_steps, inter.z_hat),
        )

    forward = forward_pframe

    def decode_pframe(self, ref_frame: torch.Tensor, state: TemporalState, fa_idx: int, qp: int,
                      predict: bool, source: LatentSource) -> Tuple[torch.Tensor, TemporalState]:
        """Decoder side of a P-frame: latents come from ``source`` in coding order (mv_z, mv_y, z, y steps
        0..3); ``fa_idx`` is the frame-type adaptor the encoder signalled (``frame_type_index(frame_idx)``).
        Returns (reconstruction clamped to [0, 1], new state); with the encoder's symbols both equal the
        encoder's bit for bit."""
        _check_frame("ref_frame", ref_frame)
        qp = check_qp(qp)
        motion, inter = self.motion, self.inter
        ref_flow, temporal_input = self._temporal_inputs(ref_frame, state, predict)
        conds = motion.conditions(ref_flow, state.ref_mv_feature if predict else None)
        b = ref_frame.shape[0]
        mv_z_hat = source.mv_z((b, 64) + _latent_hw(ref_frame, 64))
        prior = motion.prior(mv_z_hat, _latent_hw(ref_frame, 16), temporal_input, state.ref_mv_y)
        del temporal_input
        mv_y_hat = (source.mv_y(prior) + prior.means) * prior.q_step
        flow_hat, ref_mv_feature = motion.synthesis(mv_y_hat, conds, qp)
        tc = inter.temporal_context(ref_frame, state.ref_feature, flow_hat, fa_idx)
        z_hat = source.z((b, 64) + _latent_hw(ref_frame, 64))
        y_prior = inter.prior(z_hat, _latent_hw(ref_frame, 16), tc.ctx[2], state.ref_y)
        y_hat, _, _, _ = inter.context_model.run(y_prior.scales, y_prior.means, source.y_step)
        y_hat = y_hat * y_prior.q_step
        recon, ref_feature = inter.synthesis(y_hat, tc, qp)
        return recon.clamp(0, 1), TemporalState(ref_flow=flow_hat, ref_feature=ref_feature, ref_y=y_hat,
                                                ref_mv_feature=ref_mv_feature, ref_mv_y=mv_y_hat)


class ZeroLatents:
    """A LatentSource of all-zero symbols, as the release's ``--compute_decode_macs`` substitutes."""

    def __init__(self, device=None):
        self.device = device

    def mv_z(self, shape):
        return torch.zeros(shape, device=self.device)

    def mv_y(self, prior):
        return torch.zeros_like(prior.means)

    def z(self, shape):
        return torch.zeros(shape, device=self.device)

    def y_step(self, step, scales, means, mask):
        return torch.zeros_like(means)


class ZeroLatentDecoder(nn.Module):
    """Runs ``HyTIP.decode_pframe`` on zero latents: the module ptflops counts for decoder kMAC/pixel."""

    def __init__(self, model: HyTIP):
        super().__init__()
        self.model = model

    def forward(self, ref_frame, state: TemporalState, frame_idx: int, qp: int, predict: bool):
        return self.model.decode_pframe(ref_frame, state, frame_type_index(frame_idx), qp, predict,
                                        ZeroLatents(ref_frame.device))
