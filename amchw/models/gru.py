"""A quantized GRU from Brevitas primitives, and the GRU-CNN hybrid of the GRU-CNN seed
(Kassri et al., docs/sources.md, Seed papers) for RadioML 2018's 24 classes of 2x1024 frames.

Brevitas 0.13 has no QuantGRU (docs/sources.md, Recurrent layers): QuantGRU is built from quantized
parts, one quantizer per intermediate, in the reset-after form of PyTorch's nn.GRU and Keras'
default (6 bias vectors, so C cells on I inputs hold 3 (C I + C^2 + 2 C) parameters):

    r = sigmoid(Q(W_ir x + b_ir) + Q(W_hr h + b_hr))          gates through add_r / add_z, whose
    z = sigmoid(Q(W_iz x + b_iz) + Q(W_hz h + b_hz))          input quantizer puts both addends
    n = tanh(Q(W_in x + b_in) + Q(r * Q(W_hn h + b_hn)))      on one scale
    h' = (1 - z) * n + z * h

- The input projections W_i* x are kernel-1 convolutions over the whole (N, I, T) sequence
  (they do not depend on h); the recurrent ones W_h* h are QuantLinear layers run per step.
- sigmoid and tanh are QuantSigmoid / QuantTanh with constant power-of-two output scales,
  2^-8 unsigned and 2^-7 signed: an 8-bit input code then maps to an 8-bit output code through
  a 256-entry table, exactly.
- h has the tanh output's type (2^-7, signed 8 bits), so the update is one rounding of an
  exact integer: h' = round((256 n + z (h - n)) / 256) in codes (z in units of 2^-8).
- h starts at 0. The output is the sequence of h values, (N, C, T), a float tensor whose
  values are codes times 2^-7.
- Three ways to run it, one set of values: the per-module path (each quantizer a Brevitas
  module call at every step: while activation statistics are gathered, or with fused=False);
  once every scale is learned (and in eval), the fused recurrence (amchw.models.gru_fused: the
  same arithmetic op for op, with a hand-written backward); with quantization off (a float
  warm-up), torch's nn.GRU kernels on the same weights.

GRU-CNN (the seed's Figure 3): GRU of C cells, BN, ReLU, dropout 0.2; conv 16 k3, BN, ReLU,
average pool 2, dropout 0.2; conv L k3, BN, ReLU; global average pool; BN. With C = 80 and
L = 24 classes: 25,480 parameters (BatchNorm counted as its two affine vectors), as the seed's
Table 2 prints for 80 cells (and for 50, 60, 70 and 90 cells too).
Quantizers added for integer inference (no parameters): a ReLU quantizer after the average
pools and a signed quantizer on the final BatchNorm's output (the logits).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from brevitas.core.scaling import ScalingImplType
from brevitas.nn import (QuantConv1d, QuantEltwiseAdd, QuantIdentity, QuantLinear, QuantReLU,
                         QuantSigmoid, QuantTanh)
from brevitas.quant import Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant_tensor import QuantTensor
from torch import nn

from .gru_fused import QUANTIZERS
from .quant import QuantConfig, act_kwargs, act_quantizer, input_kwargs, relu_kwargs, \
    weight_kwargs

INPUT_SHAPE = (2, 1024)
NUM_CLASSES = 24
CELLS = 80
SIGMOID_BITS = 8  # output scale 2^-8
TANH_BITS = 8  # output scale 2^-7


def sigmoid_quantizer():
    """Unsigned 8 bits over [0, 1): a constant scale of 2^-8."""
    return Uint8ActPerTensorFixedPoint.let(scaling_impl_type=ScalingImplType.CONST, max_val=1.0,
                                           bit_width=SIGMOID_BITS)


def tanh_quantizer():
    """Signed 8 bits over [-1, 1): a constant scale of 2^-7 (also the hidden state's type)."""
    return Int8ActPerTensorFixedPoint.let(scaling_impl_type=ScalingImplType.CONST, min_val=-1.0,
                                          max_val=1.0, bit_width=TANH_BITS)


def _v(t):
    """A QuantTensor's value (a plain tensor while quantization is off, e.g. in calibration)."""
    return t.value if hasattr(t, "value") else t


class QuantMul(nn.Module):
    """Elementwise product of two QuantTensors, requantized by `out` (a QuantIdentity)."""

    def __init__(self, out: nn.Module):
        super().__init__()
        self.out = out

    def forward(self, a, b):
        return self.out(_v(a) * _v(b))


class GRUUpdate(nn.Module):
    """h' = (1 - z) * n + z * h, requantized to the hidden state's type."""

    def __init__(self):
        super().__init__()
        self.out = QuantIdentity(act_quant=tanh_quantizer(), return_quant_tensor=True)

    def forward(self, z, n, h):
        zv = _v(z)
        return self.out((1 - zv) * _v(n) + zv * _v(h))


class _Frozen:
    """An activation quantizer frozen for one sequence: its scale (a tensor still attached to
    the learned parameter, so gradients reach it) and its integer bounds, read by quantizing
    a probe of -1e6 and +1e6 (after sigmoid or tanh for QuantSigmoid / QuantTanh, whose
    outputs span their whole range)."""

    def __init__(self, quant, width: int, like: torch.Tensor):
        probe = quant(torch.full((2, width), 1e6, dtype=like.dtype).mul_(
            torch.tensor([[-1.0], [1.0]], dtype=like.dtype)))
        if float(probe.zero_point.abs().max()) != 0.0:
            raise ValueError("the fused GRU path needs zero points of 0")
        self.scale = probe.scale
        codes = (probe.value / probe.scale).detach()
        self.lo, self.hi = float(codes[0].min()), float(codes[1].max())


#: parameter-less nn.GRU modules whose kernels QuantGRU._float runs on its own weights
_SHELLS: dict[tuple[int, int], nn.GRU] = {}


def _quantizing(quant_identity: nn.Module) -> bool:
    """Whether a QuantIdentity quantizes (False while amchw.train.set_quantization has
    turned quantization off)."""
    return not getattr(quant_identity.act_quant, "disable_quant", False)


def _statistics_done(module: nn.Module) -> bool:
    """Whether every runtime-statistics scale inside `module` has finished gathering (its
    scale is then a learned parameter, independent of the input)."""
    return all(m.counter > m.collect_stats_steps for m in module.modules()
               if isinstance(getattr(m, "counter", None), int)
               and hasattr(m, "collect_stats_steps"))


class QuantGRU(nn.Module):
    """A single-layer, unidirectional GRU on (N, I, T) QuantTensor input; returns (N, C, T)."""

    def __init__(self, input_size: int, hidden_size: int, config: QuantConfig | None = None):
        super().__init__()
        config = config or QuantConfig()
        wq = weight_kwargs(config)
        self.input_size, self.hidden_size = input_size, hidden_size
        for g in ("r", "z", "n"):
            setattr(self, f"w_i{g}", QuantConv1d(input_size, hidden_size, 1, bias=True, **wq))
            setattr(self, f"w_h{g}", QuantLinear(hidden_size, hidden_size, bias=True, **wq))
        addq = dict(input_quant=act_quantizer(config), input_bit_width=config.act_bits,
                    output_quant=act_quantizer(config), output_bit_width=config.act_bits,
                    return_quant_tensor=True)
        self.add_r = QuantEltwiseAdd(**addq)
        self.add_z = QuantEltwiseAdd(**addq)
        self.add_n = QuantEltwiseAdd(**addq)
        self.sig_r = QuantSigmoid(act_quant=sigmoid_quantizer(), return_quant_tensor=True)
        self.sig_z = QuantSigmoid(act_quant=sigmoid_quantizer(), return_quant_tensor=True)
        self.tanh_n = QuantTanh(act_quant=tanh_quantizer(), return_quant_tensor=True)
        self.q_hn = QuantIdentity(**act_kwargs(config))
        self.mul_r = QuantMul(QuantIdentity(**act_kwargs(config)))
        self.update = GRUUpdate()

    def _recurrent_weights(self, h):
        """(weight, bias) of the three recurrent layers, quantized once per sequence (h's scale
        is constant): each QuantLinear's weights and Int32 bias."""
        out = []
        for g in "rzn":
            lin = getattr(self, f"w_h{g}")
            qw = lin.quant_weight()
            qb = lin.bias_quant(lin.bias, h, qw)
            out.append((qw.value, qb.value if isinstance(qb, QuantTensor) else qb))
        return out

    def _recurrent(self, h):
        """The three recurrent layers as functions of h, applied as QuantLinear does (F.linear
        on the values, weights from _recurrent_weights); calling the modules would requantize
        them at every step."""
        if not isinstance(h, QuantTensor):  # quantization off (calibration): the modules
            return [getattr(self, f"w_h{g}") for g in "rzn"]
        return [lambda v, w=w, b=b: F.linear(v.value, w, b) for w, b in self._recurrent_weights(h)]

    #: False forces the per-module path (the reference the fused path is tested against)
    fused = True

    def forward(self, x):
        if self.fused and not _quantizing(self.update.out):
            return self._float(x)   # quantization off (a float warm-up): torch's GRU kernels
        gi_r, gi_z, gi_n = self.w_ir(x), self.w_iz(x), self.w_in(x)  # (N, C, T) each
        n_frames, steps = gi_r.shape[0], gi_r.shape[2]
        h = self.update.out(torch.zeros(n_frames, self.hidden_size, dtype=gi_r.dtype))
        if self.fused and isinstance(h, QuantTensor) and (
                not self.training or _statistics_done(self)):
            return self._fused(gi_r, gi_z, gi_n, h)
        w_hr, w_hz, w_hn = self._recurrent(h)
        out = []
        for t in range(steps):
            r = self.sig_r(self.add_r(gi_r[:, :, t], w_hr(h)))
            z = self.sig_z(self.add_z(gi_z[:, :, t], w_hz(h)))
            rhn = self.mul_r(r, self.q_hn(w_hn(h)))
            n = self.tanh_n(self.add_n(gi_n[:, :, t], rhn))
            h = self.update(z, n, h)
            out.append(_v(h))
        return torch.stack(out, dim=2)


    def _float(self, x):
        """The float GRU (every quantizer off) by torch's nn.GRU kernels on this module's
        weights (the same reset-after cell, gates in r, z, n order): what a float warm-up
        trains, at float speed. Equal to the per-module float path up to float rounding."""
        from torch.func import functional_call

        key = (self.input_size, self.hidden_size)
        shell = _SHELLS.get(key)
        if shell is None:
            shell = _SHELLS[key] = nn.GRU(*key, batch_first=True)
        w = {k: torch.cat([getattr(self, f"w_{k}{g}").weight for g in "rzn"])
             for k in ("i", "h")}
        b = {k: torch.cat([getattr(self, f"w_{k}{g}").bias for g in "rzn"]) for k in ("i", "h")}
        params = {"weight_ih_l0": w["i"].reshape(3 * self.hidden_size, self.input_size),
                  "weight_hh_l0": w["h"], "bias_ih_l0": b["i"], "bias_hh_l0": b["h"]}
        seq = _v(x).transpose(1, 2)
        return functional_call(shell, params, (seq,))[0].transpose(1, 2)

    def _fused(self, gi_r, gi_z, gi_n, h):
        """The recurrence as one autograd Function (amchw.models.gru_fused) with every
        quantizer frozen for the sequence: the same values as the per-module path (a test
        checks equality), without Brevitas' proxy machinery at each of the 1,024 steps."""
        from .gru_fused import FusedQuantGRU

        c, like = self.hidden_size, gi_r
        quants = {"in_r": self.add_r.input_quant, "out_r": self.add_r.output_quant,
                  "in_z": self.add_z.input_quant, "out_z": self.add_z.output_quant,
                  "in_n": self.add_n.input_quant, "out_n": self.add_n.output_quant,
                  "sig_r": self.sig_r, "sig_z": self.sig_z, "tanh_n": self.tanh_n,
                  "q_hn": self.q_hn, "q_mul": self.mul_r.out, "q_h": self.update.out}
        frozen = [_Frozen(quants[k], c, like) for k in QUANTIZERS]
        scales = torch.stack([f.scale.reshape(()) for f in frozen])
        bounds = tuple((f.lo, f.hi) for f in frozen)
        (w_r, b_r), (w_z, b_z), (w_n, b_n) = self._recurrent_weights(h)
        return FusedQuantGRU.apply(gi_r, gi_z, gi_n, h.value, w_r, b_r, w_z, b_z, w_n, b_n,
                                   scales, bounds)

def gru_cnn(config: QuantConfig | None = None, *, num_classes: int = NUM_CLASSES,
            cells: int = CELLS, dropout: float = 0.2) -> nn.Sequential:
    """The GRU-CNN hybrid (25,480 parameters for 80 cells and 24 classes)."""
    config = config or QuantConfig()
    wq, rq = weight_kwargs(config), relu_kwargs(config)
    layers = [
        ("inp", QuantIdentity(**input_kwargs(config))),
        ("gru", QuantGRU(INPUT_SHAPE[0], cells, config)),
        ("bn_gru", nn.BatchNorm1d(cells)),
        ("relu_gru", QuantReLU(**rq)),
        ("drop_gru", nn.Dropout(dropout)),
        ("conv1", QuantConv1d(cells, 16, 3, bias=True, **wq)),
        ("bn1", nn.BatchNorm1d(16)),
        ("relu1", QuantReLU(**rq)),
        ("pool1", nn.AvgPool1d(2)),
        ("qpool1", QuantReLU(**rq)),
        ("drop1", nn.Dropout(dropout)),
        ("conv2", QuantConv1d(16, num_classes, 3, bias=True, **wq)),
        ("bn2", nn.BatchNorm1d(num_classes)),
        ("relu2", QuantReLU(**rq)),
        ("gap", nn.AdaptiveAvgPool1d(1)),
        ("qgap", QuantReLU(**rq)),
        ("flatten", nn.Flatten()),
        ("bn_out", nn.BatchNorm1d(num_classes)),
        ("q_out", QuantIdentity(**act_kwargs(config))),
    ]
    return nn.Sequential(OrderedDict(layers))
