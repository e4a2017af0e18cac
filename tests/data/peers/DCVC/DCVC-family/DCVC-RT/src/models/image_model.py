# Stand-in for DCVC-RT's image_model.py: the I-frame model, here with 2*3 + 3 = 9 parameters.
from torch import nn


class DMCI(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 3)
