"""Lowering from Brevitas: one handler per layer type, integers read from Brevitas itself.

The model is run once on sample frames with hooks on every supported layer; the recorded
calls give the dataflow (so residual/concat structures built from modules lower too) and the
runtime scales. Float ops between quantizers (BatchNorm, float biases, average pools) are kept
as an exact rational affine map per channel and folded into the next requantization.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import nn

from amchw.ir import (GRU, Add, AvgPool, Concat, Conv, Dense, FloatType, GateMix, Lut, MaxPool,
                      Mul, QType, Quantize, Reshape, acc_type, fixed_multiplier, validate)
from amchw.ir.types import exact
from amchw.models.gru import QuantGRU
from amchw.models.ibcnn import ToImage
from amchw.models.layers import Cat

from .common import Affine, Codes, Emitter, FloatIn, LoweringError, bn_affine

try:  # brevitas import is heavy; done once at module import (this module needs it anyway)
    import brevitas.nn as qnn
    from brevitas.quant_tensor import QuantTensor
except ImportError as e:  # pragma: no cover - brevitas is a core dependency
    raise ImportError("amchw.lower.brevitas needs brevitas") from e


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _flat(t) -> list[float]:
    return [float(v) for v in np.atleast_1d(_np(torch.as_tensor(t)).astype(np.float64)).ravel()]


def _qt_type(qt: QuantTensor, narrow: bool, path: str) -> QType:
    zp = _flat(qt.zero_point)
    if len(set(zp)) != 1 or zp[0] != int(zp[0]):
        raise LoweringError(f"{path}: per-channel or fractional zero points are not supported")
    scale = _flat(qt.scale)
    return QType(int(float(qt.bit_width)), bool(qt.signed), narrow, tuple(scale), int(zp[0]),
                 1 if len(scale) > 1 else None)


def _act_clamp(module, path: str, t: QType, scale: float) -> tuple[int, int]:
    """The code range after the quantizer's activation: ReLU and Hardtanh commute with the
    (monotone) rounding, so they become a clamp of the codes."""
    impl = module.act_quant.fused_activation_quant_proxy.activation_impl
    lo, hi = t.lo, t.hi
    if isinstance(impl, nn.Identity):
        pass
    elif isinstance(impl, nn.ReLU):
        lo = max(lo, t.zero_point)
    elif isinstance(impl, nn.Hardtanh):
        lo = max(lo, t.zero_point + round(exact(impl.min_val) / exact(scale)))
        hi = min(hi, t.zero_point + round(exact(impl.max_val) / exact(scale)))
    else:
        raise LoweringError(f"{path}: activation {type(impl).__name__} inside the quantizer "
                            "has no integer lowering")
    return lo, hi


class _Lowerer(Emitter):
    """The emitter plus a map from torch tensors (by id) to what they are in the IR."""

    def __init__(self, name: str, mantissa_bits: int | None = None):
        super().__init__(name, mantissa_bits)
        self.handles: dict[int, object] = {}
        self.keep: list = []  # keep tensors alive so their ids stay unique
        # comparison points inside a module (e.g. an add's input quantizer), with the running
        # call count of each such submodule
        self.extra: list[Point] = []
        self.sub_calls: dict[str, int] = {}

    def sub_point(self, path: str, value: str) -> None:
        """A codes point at submodule `path` (one more call of it)."""
        k = self.sub_calls[path] = self.sub_calls.get(path, -1) + 1
        self.extra.append(Point(path, value, "codes", k))

    def set(self, t, h) -> None:
        self.keep.append(t)
        self.handles[id(t)] = h

    def get(self, t, path: str):
        h = self.handles.get(id(t))
        if h is None:
            raise LoweringError(f"{path}: its input comes from an operation that is not a "
                                "supported module (a functional op in forward?); amchw lowers "
                                "models built from modules only")
        return h


def _pads_of(module, nd: int, kernel, dilation) -> tuple[tuple[int, int], ...]:
    p = module.padding
    if isinstance(p, str):
        if p == "valid":
            return ((0, 0),) * nd
        if p == "same":
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise LoweringError(f"unknown padding {p!r}")
    p = (p,) * nd if isinstance(p, int) else tuple(p)
    return tuple((int(v), int(v)) for v in p)


def _tup(v, nd):
    return (int(v),) * nd if isinstance(v, int) else tuple(int(e) for e in v)


# ------------------------------------------------------------------ handlers

def _h_quant_act(L: _Lowerer, path, module, args, out):
    if not isinstance(out, QuantTensor):
        raise LoweringError(f"{path}: set return_quant_tensor=True on activation quantizers so "
                            "their scale is visible to the next layer")
    h = L.get(args[0], path)
    t = _qt_type(out, bool(module.act_quant.is_narrow_range), path)
    lo, hi = _act_clamp(module, path, t, t.scale[0])
    name = path.replace(".", "_")
    if isinstance(h, FloatIn):
        if (lo, hi) != (t.lo, t.hi) and not (lo == t.zero_point == 0 and not t.signed):
            raise LoweringError(f"{path}: a clamping activation on the float input is not "
                                "supported")
        v = L.b.add(name, Quantize(t, "half_even"), [h.name], path)
        return Codes(v.name)
    return L.requant(name, L.affine_of(h, path), t, lo, hi, path)


def _h_conv_dense(L: _Lowerer, path, module, args, out):
    qin = args[0]
    h = L.get(qin, path)
    if not isinstance(h, Codes) or not isinstance(qin, QuantTensor):
        raise LoweringError(f"{path}: input must be a QuantTensor from a quantizer "
                            "(return_quant_tensor=True upstream)")
    xt = L.vtype(h.name)
    qw = module.quant_weight()
    if not isinstance(qw, QuantTensor):
        raise LoweringError(f"{path}: weight quantization is disabled")
    w_int = _np(qw.int()).astype(np.int32)
    wt = _qt_type(qw, bool(module.weight_quant.is_narrow_range), path)
    if xt.per_channel:
        raise LoweringError(f"{path}: per-channel input scales are not supported")
    acc = acc_type(xt, wt)
    K = w_int.shape[0]
    bias = None
    B = [Fraction(0)] * K
    if module.bias is not None:
        if module.bias_quant.is_quant_enabled:
            qb = module.bias_quant(module.bias, qin, qw)
            bs = _flat(qb.scale)
            want = list(acc.scale) if acc.per_channel else [acc.scale[0]]
            if len(bs) != len(want) or any(abs(a - b) > 1e-6 * b for a, b in zip(bs, want)):
                raise LoweringError(f"{path}: bias scale is not input scale x weight scale; "
                                    "use Int32Bias/IntBias with a quantized input")
            bias = _np(qb.int()).astype(np.int64).ravel()
            if bias.min(initial=0) < -2**31 or bias.max(initial=0) >= 2**31:
                raise LoweringError(f"{path}: bias codes exceed int32")
            bias = bias.astype(np.int32)
        else:  # a float bias: real output = acc * S + b, folded into the next requant
            B = [exact(v) for v in _flat(module.bias)]
    name = path.replace(".", "_")
    if isinstance(module, nn.Linear):
        op = Dense(w_int, bias, wt, acc)
    else:
        nd = w_int.ndim - 2
        if getattr(module, "padding_mode", "zeros") != "zeros":
            raise LoweringError(f"{path}: padding_mode {module.padding_mode!r} (only zeros)")
        kernel = w_int.shape[2:]
        dil = _tup(module.dilation, nd)
        op = Conv(w_int, bias, wt, _tup(module.stride, nd), _pads_of(module, nd, kernel, dil),
                  dil, int(module.groups), acc)
    v = L.b.add(name, op, [h.name], path)
    S = [exact(s) for s in acc.scale] if acc.per_channel else [exact(acc.scale[0])] * K
    return Affine(v.name, S, B)


def _h_bn(L: _Lowerer, path, module, args, out):
    if module.training:
        raise LoweringError(f"{path}: BatchNorm in training mode; call model.eval() first")
    if module.running_mean is None:
        raise LoweringError(f"{path}: BatchNorm without running statistics")
    aff = L.affine_of(L.get(args[0], path), path)
    # y = (x - mean) / sqrt(var + eps) * gamma + beta = x * a + b in float64 with IEEE
    # (correctly rounded) numpy arithmetic: torch's vectorised float64 sqrt is not correctly
    # rounded and depends on the CPU, numpy's does not; the QONNX import computes the same a, b.
    # The fold S' = S*a, B' = B*a + b is then exact in rationals.
    var = _np(module.running_var).astype(np.float64)
    mean = _np(module.running_mean).astype(np.float64)
    g = _np(module.weight).astype(np.float64) if module.weight is not None else np.ones_like(var)
    beta = _np(module.bias).astype(np.float64) if module.bias is not None \
        else np.zeros_like(var)
    a, b = bn_affine(g, beta, mean, var, float(module.eps))
    return L.scale_shift(aff, a, b, f"{path}: BatchNorm")


def _h_maxpool(L: _Lowerer, path, module, args, out):
    if module.ceil_mode or getattr(module, "return_indices", False):
        raise LoweringError(f"{path}: ceil_mode/return_indices are not supported")
    h = L.get(args[0], path)
    nd = 1 if isinstance(module, nn.MaxPool1d) else 2
    k = _tup(module.kernel_size, nd)
    s = _tup(module.stride if module.stride is not None else module.kernel_size, nd)
    d = _tup(module.dilation, nd)
    p = _tup(module.padding, nd)
    op = MaxPool(k, s, tuple((v, v) for v in p), d)
    name = path.replace(".", "_")
    if isinstance(h, Codes):
        return Codes(L.b.add(name, op, [h.name], path).name)
    if isinstance(h, Affine) and all(sv > 0 for sv in h.S):
        # max commutes with an increasing affine map: pool the integers, keep the map
        if any(pv for pv in p):
            raise LoweringError(f"{path}: padded max pool on a float tensor is not supported")
        v = L.b.add(name, op, [h.name], path)
        return Affine(v.name, h.S, h.B)
    raise LoweringError(f"{path}: max pool of a float tensor with a negative per-channel scale")


def _h_avgpool(L: _Lowerer, path, module, args, out):
    h = L.get(args[0], path)
    if not isinstance(h, Codes):
        raise LoweringError(f"{path}: average pool needs a quantized input")
    x = L.b.value(h.name)
    nd = len(x.shape) - 1
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        osz = _tup(module.output_size, nd)
        if any(o is None or x.shape[1 + i] % o for i, o in enumerate(osz)):
            raise LoweringError(f"{path}: adaptive pool to {osz} from {x.shape[1:]} is not a "
                                "uniform window")
        k = tuple(x.shape[1 + i] // o for i, o in enumerate(osz))
        s, p = k, (0,) * nd
    else:
        if module.ceil_mode or getattr(module, "divisor_override", None):
            raise LoweringError(f"{path}: ceil_mode/divisor_override are not supported")
        k = _tup(module.kernel_size, nd)
        s = _tup(module.stride if module.stride is not None else module.kernel_size, nd)
        p = _tup(module.padding, nd)
        if any(p) and not module.count_include_pad:
            raise LoweringError(f"{path}: count_include_pad=False with padding is not supported")
    op = AvgPool(k, s, tuple((v, v) for v in p), "sum")
    v = L.b.add(path.replace(".", "_"), op, [h.name], path)
    t = L.vtype(h.name)
    win = int(np.prod(k))
    C = x.shape[0]
    S = ([exact(sc) / win for sc in t.scale] if t.per_channel else [exact(t.scale[0]) / win] * C)
    return Affine(v.name, S, [Fraction(0)] * C)


def _h_flatten(L: _Lowerer, path, module, args, out):
    if module.start_dim != 1 or module.end_dim != -1:
        raise LoweringError(f"{path}: only Flatten(start_dim=1, end_dim=-1) is supported")
    h = L.get(args[0], path)
    if not isinstance(h, Codes):
        raise LoweringError(f"{path}: flatten of a float tensor; quantize before flattening")
    x = L.b.value(h.name)
    v = L.b.add(path.replace(".", "_"), Reshape((int(np.prod(x.shape)),)), [h.name], path)
    return Codes(v.name)


def _h_to_image(L: _Lowerer, path, module, args, out):
    """A feature map read as an image (amchw.models.ibcnn.ToImage): a Reshape of the codes
    (same order)."""
    h = L.get(args[0], path)
    if not isinstance(h, Codes):
        raise LoweringError(f"{path}: reshape of a float tensor; quantize before it")
    x = L.b.value(h.name)
    if int(np.prod(module.shape)) != int(np.prod(x.shape)):
        raise LoweringError(f"{path}: cannot reshape {x.shape} to {module.shape}")
    v = L.b.add(path.replace(".", "_"), Reshape(module.shape), [h.name], path)
    return Codes(v.name)


def _h_identity(L: _Lowerer, path, module, args, out):
    return L.get(args[0], path)


def _io_quant(proxy) -> bool:
    return proxy is not None and getattr(proxy, "is_quant_enabled", False)


def _proxy_type(proxy, path) -> QType:
    scale = _flat(proxy.scale())
    zp = _flat(proxy.zero_point())
    return QType(int(float(proxy.bit_width())), bool(proxy.is_signed),
                 bool(proxy.is_narrow_range), tuple(scale), int(zp[0]),
                 1 if len(scale) > 1 else None)


def _h_add(L: _Lowerer, path, module, args, out):
    return _add_nodes(L, path, module, [L.get(a, path) for a in args[:2]])


def _add_nodes(L: _Lowerer, path, module, hs):
    """A QuantEltwiseAdd on two handles (codes, or float affine views if it has an input
    quantizer)."""
    name = path.replace(".", "_")
    if not _io_quant(module.input_quant) and not all(isinstance(h, Codes) for h in hs):
        raise LoweringError(f"{path}: both inputs of an add without input quantizer must be "
                            "quantized")
    if _io_quant(module.input_quant):  # codes or a float (affine) view, e.g. a BatchNorm output
        it = _proxy_type(module.input_quant, path)
        hs = [L.requant(f"{name}_in{i}", L.affine_of(h, path), it, it.lo, it.hi, path)
              for i, h in enumerate(hs)]
        for h in hs:  # Brevitas calls the shared input quantizer once per addend
            L.sub_point(f"{path}.input_quant", h.name)
    if not _io_quant(module.output_quant):
        raise LoweringError(f"{path}: an add without output quantizer is not supported")
    ot = _proxy_type(module.output_quant, path)
    ta, tb = (L.vtype(h.name) for h in hs)
    Ma, Mb = exact(ta.scale[0]) / exact(ot.scale[0]), exact(tb.scale[0]) / exact(ot.scale[0])
    ma, sa = fixed_multiplier(Ma, strip=False)
    mb, sb = fixed_multiplier(Mb, strip=False)
    s = min(sa, sb)
    ma, mb = round(Ma * (1 << s)), round(Mb * (1 << s))
    op = Add(ma, mb, s, 0, ot, ot.lo, ot.hi, "half_even")
    return Codes(L.b.add(name, op, [h.name for h in hs], path).name)


def _h_cat(L: _Lowerer, path, module, args, out):
    """amchw.models.layers.Cat: inputs share one quantization, so the codes are copied."""
    hs = [L.get(a, path) for a in args]
    if not all(isinstance(h, Codes) for h in hs):
        raise LoweringError(f"{path}: every input of the concatenation must be quantized")
    ot = L.vtype(hs[0].name)
    if any(L.vtype(h.name) != ot for h in hs):
        raise LoweringError(f"{path}: concatenated inputs must share one quantization "
                            "(scale, bits, zero point); requantize them first")
    n = len(hs)
    op = Concat(int(module.dim), (1,) * n, (0,) * n, ot, "half_even")
    return Codes(L.b.add(path.replace(".", "_"), op, [h.name for h in hs], path).name)


def _out_type(module, path: str, like: torch.Tensor) -> tuple[QType, int, int]:
    """A quantizer module's output type and code clamp, read by running it on zeros (in eval
    mode its scale is fixed)."""
    q = module(torch.zeros_like(like))
    if not isinstance(q, QuantTensor):
        raise LoweringError(f"{path}: set return_quant_tensor=True")
    t = _qt_type(q, bool(module.act_quant.is_narrow_range), path)
    return (t, *_act_clamp(module, path, t, t.scale[0]))


def _lut(L: _Lowerer, path: str, module, h, like: torch.Tensor):
    """QuantSigmoid / QuantTanh on codes: the module itself evaluated on every input code, as
    Brevitas sees it ((code - zp) * scale in the model's dtype), becomes the table."""
    if not isinstance(h, Codes):
        raise LoweringError(f"{path}: the nonlinearity needs quantized input")
    t = L.vtype(h.name)
    if t.per_channel or t.bits > 16:
        raise LoweringError(f"{path}: a table needs a per-tensor input of at most 16 bits")
    codes = torch.arange(t.lo, t.hi + 1, dtype=like.dtype)
    scale = torch.tensor(t.scale[0], dtype=like.dtype)
    q = module((codes - t.zero_point) * scale)
    ot = _qt_type(q, bool(module.act_quant.is_narrow_range), path)
    table = _np(q.int()).astype(np.int64)
    return Codes(L.b.add(path.replace(".", "_"), Lut(table, ot), [h.name], path).name)


def _h_gru(L: _Lowerer, path, module, args, out):
    """amchw.models.gru.QuantGRU: the input projections as three kernel-1 convolutions over
    the sequence, and one GRU node whose cell graph is lowered here from the module's parts."""
    x = args[0]
    C = module.hidden_size
    gi = {}
    for g in "rzn":
        a = _h_conv_dense(L, f"{path}.w_i{g}", getattr(module, f"w_i{g}"), (x,), None)
        if any(b != 0 for b in a.B):
            raise LoweringError(f"{path}.w_i{g}: the input projection needs an integer bias")
        gi[g] = a
    like = x.value if isinstance(x, QuantTensor) else x
    h0 = module.update.out(torch.zeros(1, C, dtype=like.dtype))
    E = _Lowerer(f"{L.b.name}_{path.replace('.', '_')}_cell", L.mantissa_bits)
    for g in "rzn":
        v = E.b.input(f"gi_{g}", (C,), L.vtype(gi[g].name))
        E.b._bounds[v.name] = L.b.bound(gi[g].name)
    h_in = E.b.input("h", (C,), _qt_type(h0, bool(module.update.out.act_quant.is_narrow_range),
                                         path))
    E.set(h0, Codes(h_in.name))
    hh = {g: _h_conv_dense(E, f"{path}.w_h{g}", getattr(module, f"w_h{g}"), (h0,), None)
          for g in "rzn"}
    zrow = torch.zeros(1, C, dtype=like.dtype)

    def gate(g, sig):
        a = _add_nodes(E, f"{path}.add_{g}", getattr(module, f"add_{g}"),
                       [Affine(f"gi_{g}", gi[g].S, gi[g].B), hh[g]])
        return _lut(E, f"{path}.{sig}", getattr(module, sig), a, zrow)

    r, z = gate("r", "sig_r"), gate("z", "sig_z")
    t, lo, hi = _out_type(module.q_hn, f"{path}.q_hn", zrow)
    hn = E.requant(f"{path.replace('.', '_')}_q_hn", hh["n"], t, lo, hi, f"{path}.q_hn")
    tr, thn = E.vtype(r.name), E.vtype(hn.name)
    prod = E.b.add(f"{path.replace('.', '_')}_mul_r", Mul(), [r.name, hn.name], f"{path}.mul_r")
    sp = exact(tr.scale[0]) * exact(thn.scale[0])
    t, lo, hi = _out_type(module.mul_r.out, f"{path}.mul_r.out", zrow)
    rhn = E.requant(f"{path.replace('.', '_')}_mul_r_out", Affine(prod.name, [sp] * C,
                                                                   [Fraction(0)] * C),
                    t, lo, hi, f"{path}.mul_r")
    a = _add_nodes(E, f"{path}.add_n", module.add_n, [Affine("gi_n", gi["n"].S, gi["n"].B), rhn])
    n = _lut(E, f"{path}.tanh_n", module.tanh_n, a, zrow)
    tz, tn = E.vtype(z.name), E.vtype(n.name)
    k = 1 / exact(tz.scale[0])
    if k.denominator != 1 or tn.scale != h_in.dtype.scale:
        raise LoweringError(f"{path}.update: needs a gate scale 1/k (k an integer) and h on "
                            "tanh's scale")
    mix = E.b.add(f"{path.replace('.', '_')}_update_mix", GateMix(int(k)),
                  [z.name, n.name, h_in.name], f"{path}.update")
    sm = exact(tz.scale[0]) * exact(tn.scale[0])
    t, lo, hi = _out_type(module.update.out, f"{path}.update.out", zrow)
    if t != h_in.dtype:
        raise LoweringError(f"{path}.update: the new state's type {t} is not h's {h_in.dtype}")
    h_new = E.requant(f"{path.replace('.', '_')}_update", Affine(mix.name, [sm] * C,
                                                                 [Fraction(0)] * C),
                      t, lo, hi, f"{path}.update")
    cell = E.b.build([h_new.name])
    validate(cell, {f"gi_{g}": L.b.bound(gi[g].name) for g in "rzn"})
    v = L.b.add(path.replace(".", "_"), GRU(cell), [gi[g].name for g in "rzn"], path)
    return Codes(v.name)


_HANDLERS: list[tuple[tuple[type, ...], object]] = [
    ((QuantGRU,), _h_gru),
    ((qnn.QuantReLU, qnn.QuantIdentity, qnn.QuantHardTanh), _h_quant_act),
    ((qnn.QuantConv1d, qnn.QuantConv2d, qnn.QuantLinear), _h_conv_dense),
    ((nn.BatchNorm1d, nn.BatchNorm2d), _h_bn),
    ((nn.MaxPool1d, nn.MaxPool2d), _h_maxpool),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d), _h_avgpool),
    ((nn.Flatten,), _h_flatten),
    ((ToImage,), _h_to_image),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity), _h_identity),
    ((qnn.QuantEltwiseAdd,), _h_add),
    ((Cat,), _h_cat),
]


def _handler(module):
    for types, fn in _HANDLERS:
        if isinstance(module, types):
            return fn
    return None


def supported_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The modules the lowering hooks, by path; LoweringError naming any unsupported leaf."""
    found: dict[str, nn.Module] = {}
    skip: list[str] = []
    for path, m in model.named_modules():
        if any(path.startswith(p + ".") for p in skip):
            continue
        if _handler(m) is not None:
            found[path or type(m).__name__] = m
            skip.append(path)
        elif not list(m.children()) and path:
            raise LoweringError(f"{path}: unsupported module {type(m).__name__}")
    return found


@dataclass
class Point:
    """Where a Brevitas module's output lives in the IR, for layer-by-layer comparison:
    codes (compare QuantTensor.int()) or an affine view real = (int - zx) * S + B of an IR
    integer value (recover the integer from the float output)."""
    path: str
    value: str
    kind: str  # "codes" | "affine"
    call: int = 0  # which call of the module (a module may run more than once per forward)
    S: np.ndarray | None = None
    B: np.ndarray | None = None


def lower(model: nn.Module, sample: torch.Tensor, name: str | None = None,
          mantissa_bits: int | None = None):
    """Lower a Brevitas model (eval mode) to a validated IR graph (see lower_with_points)."""
    return lower_with_points(model, sample, name, mantissa_bits)[0]


def lower_with_points(model: nn.Module, sample: torch.Tensor, name: str | None = None,
                      mantissa_bits: int | None = None):
    """Lower a Brevitas model (eval mode) to a validated IR graph, plus the comparison points.

    `sample` is a batch of input frames (N, *input shape) used to trace the dataflow and read
    the runtime scales; its dtype picks the precision the integers are read in (float32 or
    float64 after model.double()). mantissa_bits=31 gives int32 requantization multipliers
    (what an int32 hardware requantizer holds); None (default) uses the widest mantissa the
    int64 intermediate provably allows, which reproduces the float64 model at every code.
    """
    if model.training:
        raise LoweringError("model is in training mode; call model.eval() before lowering")
    mods = supported_modules(model)
    L = _Lowerer(name or getattr(model, "amchw_meta", {}).get("name", type(model).__name__),
                 mantissa_bits)
    calls: list[tuple[str, nn.Module, tuple, object]] = []

    def mk(path):
        def hook(mod, args, output):
            calls.append((path, mod, args, output))
        return hook

    hooks = [m.register_forward_hook(mk(p)) for p, m in mods.items()]
    try:
        with torch.no_grad():
            x = sample
            inp = L.b.input("x", tuple(x.shape[1:]), FloatType(32))
            L.set(x, FloatIn(inp.name))
            y = model(x)
    finally:
        for hk in hooks:
            hk.remove()
    points: list[Point] = []
    ncall: dict[str, int] = {}
    for path, mod, args, output in calls:
        k = ncall[path] = ncall.get(path, -1) + 1
        fn = _handler(mod)
        h = fn(L, path, mod, args, output)
        L.set(output, h)
        points += L.extra
        L.extra.clear()
        if fn is _h_identity:
            continue
        if isinstance(h, Codes) and not isinstance(output, QuantTensor):
            # codes returned as their float values (a QuantGRU's state sequence)
            t = L.vtype(h.name)
            C = L.b.value(h.name).shape[0]
            S = np.array(t.scale if t.per_channel else t.scale * C, np.float64)
            points.append(Point(path, h.name, "affine", k, S, np.zeros(C)))
        elif isinstance(h, Codes):
            points.append(Point(path, h.name, "codes", k))
        elif isinstance(h, Affine):
            points.append(Point(path, h.name, "affine", k, np.array([float(v) for v in h.S]),
                                np.array([float(v) for v in h.B])))
    # several outputs (e.g. an early exit and the final)
    if isinstance(y, (tuple, list)) and not isinstance(y, QuantTensor):
        final = [L.get(v, f"model output {i}") for i, v in enumerate(y)]
    else:
        final = L.get(y, "model output")
    g = L.finish(final, {"source": "brevitas", "precision": str(sample.dtype)})
    for p in points:  # the graph's canonical names
        p.value = L.b.renamed.get(p.value, p.value)
    return g, points
