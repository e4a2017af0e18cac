# A stand-in for microsoft/DCVC's DCVC-family/DCVC-RT/src/models/video_model.py with the same entry points (DMC with
# its own decoded picture buffer, compress and decompress with CUDA events and streams around the entropy coder) and
# a network small enough to count by hand: the tests check the adapter's mechanics on it, never the real DCVC-RT.
import torch
from torch import nn
import torch.nn.functional as F


class RefFrame:
    def __init__(self):
        self.frame = None
        self.feature = None


class BitEstimator(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.channel = channel

    def get_z(self, size, device, dtype):
        raise RuntimeError("the entropy decoder ran")


class GaussianEncoder:
    def decode_and_get_y(self, scales, dtype, device):
        raise RuntimeError("the entropy decoder ran")


class DMC(nn.Module):
    def __init__(self):
        super().__init__()
        self.feature_adaptor_i = nn.Conv2d(3 * 64, 8, 1)     # on the 8x8-unshuffled frame
        self.feature_adaptor_p = nn.Conv2d(8, 8, 1)
        self.encoder = nn.Conv2d(3 * 64 + 8, 4, 1)
        self.decoder = nn.Conv2d(4 + 8, 8, 1)
        self.recon = nn.Conv2d(8, 3 * 64, 1)
        self.bit_estimator_z = BitEstimator(2)
        self.gaussian_encoder = GaussianEncoder()
        self.entropy_coder = None
        self.dpb = []

    def get_cuda_stream(self, device, idx=0, priority=0):
        return torch.cuda.Stream(device, priority=priority)

    def clear_dpb(self):
        self.dpb.clear()

    def add_ref_frame(self, feature=None, frame=None):
        ref = RefFrame()
        ref.feature, ref.frame = feature, frame
        self.dpb = [ref]

    def _context(self):
        ref = self.dpb[0]
        if ref.feature is None:
            return self.feature_adaptor_i(F.pixel_unshuffle(ref.frame, 8))
        return self.feature_adaptor_p(ref.feature)

    def compress(self, x, qp):
        ctx = self._context()
        y = torch.round(self.encoder(torch.cat((F.pixel_unshuffle(x, 8), ctx), dim=1)))
        ready = torch.cuda.Event()
        ready.record()
        feature = self.decoder(torch.cat((y, ctx), dim=1))
        with torch.cuda.stream(self.get_cuda_stream(device=x.device, priority=-1)):
            ready.wait()
            self.entropy_coder.reset()
            self.bit_estimator_z.encode_z(y, qp)
            self.gaussian_encoder.encode_y(y, y)
            self.entropy_coder.flush()
        torch.cuda.synchronize(device=x.device)
        self.add_ref_frame(feature, None)
        return {"bit_stream": self.entropy_coder.get_encoded_stream()}

    def decompress(self, bit_stream, sps, qp):
        self.entropy_coder.set_stream(bit_stream)
        ctx = self._context()
        size = (sps["height"] // 64, sps["width"] // 64)
        self.bit_estimator_z.decode_z(size, qp)
        z_hat = self.bit_estimator_z.get_z(size, ctx.device, ctx.dtype)
        assert not z_hat.any() and z_hat.shape == (1, 2, *size)
        y_hat = self.gaussian_encoder.decode_and_get_y(torch.ones(1, 4, *ctx.shape[2:]), ctx.dtype, ctx.device)
        feature = self.decoder(torch.cat((y_hat, ctx), dim=1))
        x_hat = F.pixel_shuffle(self.recon(feature), 8)
        self.add_ref_frame(feature, x_hat)
        return {"x_hat": x_hat}
