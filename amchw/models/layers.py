"""Small modules the zoo needs that Brevitas 0.13.4 lacks in working form.

`Cat` concatenates QuantTensors that share one quantization (torch.cat on IntQuantTensors
checks this); as a module it is visible to the lowering, unlike a torch.cat call in forward.
Brevitas' own QuantCat fails in 0.13.4 (it calls a QuantTensor.cat that does not exist).
"""

from __future__ import annotations

import torch
from torch import nn


class Cat(nn.Module):
    def __init__(self, dim: int = 1):
        super().__init__()
        if dim < 1:
            raise ValueError(f"Cat concatenates along a non-batch axis; got dim={dim}")
        self.dim = dim

    def forward(self, *tensors):
        return torch.cat(list(tensors), dim=self.dim)
