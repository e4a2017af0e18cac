# A stand-in for microsoft/DCVC's DCVC-family/DCVC-DC/src/models/video_model.py with the same entry points (DMC,
# forward_one_frame, decompress, the entropy coder attributes and the dpb keys) and a network small enough to count
# by hand: the tests check the adapter's mechanics on it, never the real DCVC-DC.
import torch
from torch import nn

from ..utils.shapes import latent_shape


class BitEstimator(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.channel = channel

    def decode_stream(self, size, dtype, device):
        raise RuntimeError("the entropy decoder ran: the adapter must hand out zero latents")


class GaussianEncoder:
    def decode_stream(self, scales, dtype, device):
        raise RuntimeError("the entropy decoder ran: the adapter must hand out zero latents")


class DMC(nn.Module):
    def __init__(self):
        super().__init__()
        self.analysis = nn.Conv2d(3, 4, 4, stride=4)                 # the encoder's only analysis transform
        self.synthesis = nn.ConvTranspose2d(4, 3, 4, stride=4)       # the decoder's transposed convolution
        self.bit_estimator_z = BitEstimator(2)
        self.bit_estimator_z_mv = BitEstimator(2)
        self.gaussian_encoder = GaussianEncoder()
        self.entropy_coder = None
        self.decoded_latents = []

    def _synthesise(self, y_hat, dpb):
        x_hat = self.synthesis(y_hat) + dpb["ref_frame"]
        return {"ref_frame": x_hat, "ref_feature": x_hat[:, :2], "ref_mv_feature": y_hat[:, :, ::2, ::2],
                "ref_y": y_hat, "ref_mv_y": y_hat[:, :1]}

    def forward_one_frame(self, x, dpb, q_in_ckpt=False, q_index=None, frame_idx=0):
        assert q_in_ckpt and q_index == 0
        return {"dpb": self._synthesise(torch.round(self.analysis(x)), dpb)}

    def decompress(self, dpb, string, height, width, q_in_ckpt, q_index, frame_idx):
        self.entropy_coder.set_stream(string)
        z = self.bit_estimator_z.decode_stream(latent_shape(height, width, 64), torch.float32, "cpu")
        y = self.gaussian_encoder.decode_stream(torch.ones(1, 4, *latent_shape(height, width, 4)), torch.float32,
                                                "cpu")
        self.decoded_latents.append((z, y))
        return {"dpb": self._synthesise(y, dpb)}
