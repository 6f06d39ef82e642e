"""The IR's ops: one frozen dataclass per op, each docstring its semantics in integers.

Codes are held in int32 arrays; accumulation is modulo 2^32 (the validator proves it never
wraps for a graph it accepts); requantization is exact int64 arithmetic with a stated tie rule.
Shapes exclude the batch; channel axis is 1 counting the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import lru_cache

import numpy as np

from amchw.kernels import ROUNDING_NAMES

from .types import IRError, QType

ROUNDINGS = tuple(ROUNDING_NAMES)


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDING_NAMES:
        raise IRError(f"unknown rounding {rounding!r}; expected one of {ROUNDINGS}")


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_1d(np.asarray(a, dtype=np.int64)))


#: How a Conv/Dense stores its weights (a deployment choice; the result never depends on it):
#: "dense" every weight; "gated" every weight, zero operands gate the multiplier (energy saved,
#: cycles not); "csr" the nonzeros per output (row), "csc" per reduction position (column), with
#: `index_bits` per index; "N:M" (e.g. "2:4") at most N nonzeros in every M consecutive
#: reduction positions, stored with log2(M)-bit offsets. A weight is zero when it equals zw.
#: "pqP:K" (Dense only, e.g. "pq2:256"): product quantization, the outputs split into P
#: subspaces, each input's sub-vector one of K centroids (log2(K)-bit codes, kernels/pq.py).
WEIGHT_FORMATS = ("dense", "gated", "csr", "csc", "N:M", "pqP:K")


def parse_nm(fmt: str) -> tuple[int, int] | None:
    """(N, M) of an "N:M" format string, None for the other formats."""
    import re

    m = re.fullmatch(r"(\d+):(\d+)", fmt)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_pq(fmt: str) -> tuple[int, int] | None:
    """(P, K_s) of a "pqP:K" format string (product quantization, Dense only), else None."""
    import re

    m = re.fullmatch(r"pq(\d+):(\d+)", fmt)
    return (int(m.group(1)), int(m.group(2))) if m else None


def format_error(fmt) -> str | None:
    """Why `fmt` is not a weight format, or None."""
    if not isinstance(fmt, str):
        return f"weight format must be a string, got {fmt!r}"
    nm, pq = parse_nm(fmt), parse_pq(fmt)
    if fmt in WEIGHT_FORMATS[:4] or (nm is not None and 1 <= nm[0] <= nm[1] <= 64):
        return None
    if pq is not None and pq[0] >= 1 and pq[1] >= 2 and pq[1] & (pq[1] - 1) == 0:
        return None
    return (f"weight format must be dense, gated, csr, csc, N:M (1 <= N <= M <= 64) or pqP:K "
            f"(K a power of two), got {fmt!r}")


def _check_format(op) -> None:
    err = format_error(op.w_format)
    if err:
        raise IRError(f"{op.kind} {err}")
    if parse_pq(op.w_format) is not None and op.kind != "Dense":
        raise IRError(f"{op.kind}: product quantization (pq) is for Dense layers")
    object.__setattr__(op, "index_bits", int(op.index_bits))
    if not 0 <= op.index_bits <= 32:
        raise IRError(f"{op.kind} index_bits must be in 0..32, got {op.index_bits}")


class Op:
    """Base: every op is a frozen dataclass; arrays compare by value."""

    kind = "op"
    n_inputs = 1

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not isinstance(getattr(self, f.name), np.ndarray)}

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return False
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or not (a.dtype == b.dtype and np.array_equal(a, b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None


@dataclass(frozen=True, eq=False)
class Quantize(Op):
    """q = clamp(round(float64(x) / scale[c]) + zp, lo, hi): float frames in, codes out.

    The division is a true float64 division (Brevitas divides; a reciprocal multiply differs);
    round follows `rounding` (Brevitas and QONNX ROUND: half_even). Non-finite input is an error.
    """

    out: QType
    rounding: str = "half_even"
    kind = "Quantize"

    def __post_init__(self) -> None:
        _check_rounding(self.rounding)


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """acc[n,k,p] = bias[k] + sum_{c in group, r} (xp[n,c,p*stride + r*dilation] - zx) * (w[k,c,r] - zw)

    1-D (weight (K, C/g, KL)) or 2-D (weight (K, C/g, KH, KW)); xp is x padded with the code zx,
    so padding contributes exactly 0. int32 accumulation, wrap modulo 2^32 (never reached in a
    validated graph). Output: int32 accumulator with scale s_x * s_w[k], zero point 0.
    padding: (lo, hi) per spatial dim; stride, dilation: per spatial dim.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    w_type: QType
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int
    out: QType
    w_format: str = "dense"  # weight storage: see WEIGHT_FORMATS
    index_bits: int = 0  # csr/csc: bits per stored index (0: the fewest that address it)
    kind = "Conv"

    def __post_init__(self) -> None:
        _check_format(self)
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.int32))
        if self.bias is not None:
            object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, dtype=np.int32))
        nd = self.weight.ndim - 2
        if nd not in (1, 2):
            raise IRError(f"Conv weight must be 3-D or 4-D, got shape {self.weight.shape}")
        object.__setattr__(self, "stride", tuple(int(s) for s in self.stride))
        object.__setattr__(self, "dilation", tuple(int(s) for s in self.dilation))
        object.__setattr__(self, "padding", tuple((int(a), int(b)) for a, b in self.padding))
        for name in ("stride", "dilation", "padding"):
            if len(getattr(self, name)) != nd:
                raise IRError(f"Conv {name} needs {nd} entries, got {getattr(self, name)}")

    @property
    def ndim(self) -> int:
        return self.weight.ndim - 2

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """acc[n,k] = bias[k] + sum_c (x[n,c] - zx) * (w[k,c] - zw); int32 wrap as Conv.

    Output: int32 accumulator with scale s_x * s_w[k].
    """

    weight: np.ndarray
    bias: np.ndarray | None
    w_type: QType
    out: QType
    w_format: str = "dense"  # weight storage: see WEIGHT_FORMATS
    index_bits: int = 0  # csr/csc: bits per stored index (0: the fewest that address it)
    kind = "Dense"

    def __post_init__(self) -> None:
        _check_format(self)
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.int32))
        if self.bias is not None:
            object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, dtype=np.int32))
        if self.weight.ndim != 2:
            raise IRError(f"Dense weight must be 2-D, got shape {self.weight.shape}")


@dataclass(frozen=True, eq=False)
class Requant(Op):
    """q = clamp(round_shift((x - zx) * multiplier[c] + offset[c], shift[c]) + zo, clamp_lo, clamp_hi)

    int64 intermediate, exact; round_shift(t, s) = t / 2^s rounded by `rounding`.
    multiplier: integer mantissa, |m| < 2^62 (an int32 hardware requantizer uses |m| < 2^31:
    see `mantissa_bits`); shift 0..62; offset int64 in units of 2^-shift output LSBs (carries
    a folded float bias or BatchNorm shift). One entry or one per channel. The validator proves
    |(x - zx) * m + offset| < 2^63 for every input the type allows.
    clamp_lo/clamp_hi lie inside the output type's range; ReLU is clamp_lo = zo.
    """

    multiplier: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    out: QType
    clamp_lo: int
    clamp_hi: int
    rounding: str = "half_even"
    kind = "Requant"

    def __post_init__(self) -> None:
        _check_rounding(self.rounding)
        m, s, o = _i64(self.multiplier), _i64(self.shift), _i64(self.offset)
        n = max(len(m), len(s), len(o))
        for name, a in (("multiplier", m), ("shift", s), ("offset", o)):
            if len(a) not in (1, n):
                raise IRError(f"Requant {name} has {len(a)} entries; expected 1 or {n}")
        object.__setattr__(self, "multiplier", m)
        object.__setattr__(self, "shift", s)
        object.__setattr__(self, "offset", o)
        object.__setattr__(self, "clamp_lo", int(self.clamp_lo))
        object.__setattr__(self, "clamp_hi", int(self.clamp_hi))
        if np.any(np.abs(m) >= 2**62):
            raise IRError("Requant multiplier must be below 2^62 in magnitude")
        if np.any(s < 0) or np.any(s > 62):
            raise IRError("Requant shift must be in 0..62")
        if not (self.out.lo <= self.clamp_lo <= self.clamp_hi <= self.out.hi):
            raise IRError(f"Requant clamp [{self.clamp_lo}, {self.clamp_hi}] outside "
                          f"the output range [{self.out.lo}, {self.out.hi}]")


@dataclass(frozen=True, eq=False)
class MaxPool(Op):
    """q[n,c,p] = max over the window of x (padded positions are ignored); type unchanged."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    kind = "MaxPool"

    def __post_init__(self) -> None:
        _norm_window(self)


@dataclass(frozen=True, eq=False)
class AvgPool(Op):
    """Window average of codes, padding holds the code zx and counts (count_include_pad).

    mode "sum": acc = sum(x - zx) over the window, int32 with scale s_x / window size
    (exact; a following Requant rounds once). mode "average": q = round_div(sum(x - zx),
    window size, rounding) + zx, same type as x. A global average pool is the window = the
    whole spatial extent (kernel None in the text form is written out by the builder).
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    mode: str = "sum"
    rounding: str = "half_even"
    out: QType | None = None
    kind = "AvgPool"

    def __post_init__(self) -> None:
        _check_rounding(self.rounding)
        if self.mode not in ("sum", "average"):
            raise IRError(f"AvgPool mode must be 'sum' or 'average', got {self.mode!r}")
        _norm_window(self, dilation=False)

    @property
    def window(self) -> int:
        return int(np.prod(self.kernel))


@dataclass(frozen=True, eq=False)
class Add(Op):
    """q = clamp(round_shift((a - za) * ma + (b - zb) * mb + offset, shift) + zo, clamp_lo, clamp_hi)

    Residual add with both inputs requantized to the output scale in one rounding:
    ma = s_a / s_o * 2^shift, mb = s_b / s_o * 2^shift (the lowering uses 31-bit mantissas; the
    validator proves the int64 sum cannot overflow); per tensor.
    """

    ma: int
    mb: int
    shift: int
    offset: int
    out: QType
    clamp_lo: int
    clamp_hi: int
    rounding: str = "half_even"
    kind = "Add"
    n_inputs = 2

    def __post_init__(self) -> None:
        _check_rounding(self.rounding)
        for name in ("ma", "mb", "shift", "offset", "clamp_lo", "clamp_hi"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if abs(self.ma) >= 2**62 or abs(self.mb) >= 2**62:
            raise IRError("Add multipliers must be below 2^62 in magnitude")
        if not 0 <= self.shift <= 62:
            raise IRError("Add shift must be in 0..62")
        if not (self.out.lo <= self.clamp_lo <= self.clamp_hi <= self.out.hi):
            raise IRError("Add clamp outside the output range")


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenation along `axis` (counting the batch) after requantizing input i to `out`:
    q_i = clamp(round_shift((x_i - z_i) * multipliers[i], shifts[i]) + zo, lo, hi).
    Inputs already in the output type use multiplier 1, shift 0 (an exact copy)."""

    axis: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    out: QType
    rounding: str = "half_even"
    kind = "Concat"
    n_inputs = -1  # variadic

    def __post_init__(self) -> None:
        _check_rounding(self.rounding)
        object.__setattr__(self, "multipliers", tuple(int(m) for m in self.multipliers))
        object.__setattr__(self, "shifts", tuple(int(s) for s in self.shifts))
        if len(self.multipliers) != len(self.shifts):
            raise IRError("Concat needs one multiplier and one shift per input")


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Row-major reshape of the non-batch dims (Flatten is Reshape to (prod(shape),)); codes unchanged."""

    shape: tuple[int, ...]
    kind = "Reshape"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))


@dataclass(frozen=True, eq=False)
class Dequantize(Op):
    """y = (q - zp) * scale[c] + bias[c] in float64: the real value leaving the integer graph.
    bias (optional, float64 per channel) is a float bias the model adds after its last layer."""

    bias: np.ndarray | None = None
    kind = "Dequantize"

    def __post_init__(self) -> None:
        if self.bias is not None:
            object.__setattr__(self, "bias", np.ascontiguousarray(self.bias, dtype=np.float64))


def _norm_window(op, dilation: bool = True) -> None:
    nd = len(op.kernel)
    object.__setattr__(op, "kernel", tuple(int(k) for k in op.kernel))
    object.__setattr__(op, "stride", tuple(int(s) for s in op.stride))
    object.__setattr__(op, "padding", tuple((int(a), int(b)) for a, b in op.padding))
    if dilation:
        object.__setattr__(op, "dilation", tuple(int(d) for d in op.dilation))
    if nd not in (1, 2) or len(op.stride) != nd or len(op.padding) != nd:
        raise IRError(f"{op.kind}: kernel/stride/padding must all have 1 or 2 entries")
    if min(op.kernel) < 1 or min(op.stride) < 1:
        raise IRError(f"{op.kind}: kernel and stride must be positive")


@dataclass(frozen=True, eq=False)
class Lut(Op):
    """q_out = table[q_in - lo_in]: an elementwise function of one code, tabulated over every
    code the input type allows (a sigmoid or tanh between two quantizers is exactly such a
    table). `table` has hi_in - lo_in + 1 entries, each a code of `out`."""

    table: np.ndarray
    out: QType
    kind = "Lut"

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", _i64(self.table))


@dataclass(frozen=True, eq=False)
class Mul(Op):
    """acc = (a - za) * (b - zb): the exact elementwise product of two code tensors of one
    shape, an int32 value with scale s_a * s_b and zero point 0 (a Requant follows)."""

    kind = "Mul"
    n_inputs = 2


@dataclass(frozen=True, eq=False)
class GateMix(Op):
    """acc = k (n - zn) + (z - zz) ((h - zh) - (n - zn)): the GRU update (1 - z) n + z h in
    units of s_z s_n, for a gate z of scale s_z = 1/k and h of n's scale. Inputs (z, n, h);
    an int32 value with scale s_z * s_n (a Requant follows)."""

    k: int
    kind = "GateMix"
    n_inputs = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", int(self.k))
        if self.k < 1:
            raise IRError("GateMix k must be a positive integer")


@dataclass(frozen=True, eq=False)
class GRU(Op):
    """A recurrence over the last axis. Inputs gi_r, gi_z, gi_n (C, T): the input projections
    of every step (accumulators). The state h starts at its type's zero point; at step t the
    `cell` graph (inputs gi_r, gi_z, gi_n of shape (C,) and h, one output: the new h, of h's
    type) gives the next state. Output (C, T): h after every step."""

    cell: object  # amchw.ir.graph.Graph (imported lazily: graph.py imports this module)
    kind = "GRU"
    n_inputs = 3

    CELL_INPUTS = ("gi_r", "gi_z", "gi_n", "h")


@dataclass(frozen=True, eq=False)
class EntropyExit(Op):
    """flag = 1 (leave at the early exit) when the base-10 entropy of softmax(logits) <= threshold.

    Input: a 1-D accumulator of n logit codes q (per-tensor scale s, zero point zq); `offset`
    (None, or int64 per logit) is a float bias b = offset * s folded into the codes, so the
    logits are z_i = x_i * s with x_i = q_i - zq + offset_i (int64). Output: a uint8 flag per
    frame (shape (), codes 0/1). Integer end to end:
      d_i = max_j x_j - x_i >= 0;  j_i = d_i >> r,  k_i = d_i & (2^r - 1);
      e_i = (exp_hi[j_i] * exp_lo[k_i] + 2^(F-1)) >> F  if j_i < len(exp_hi), else 0,
        exp_hi[j] = round(2^F exp(-j s 2^r)) for every j with 2^F exp(-j s 2^r) >= 1/2,
        exp_lo[k] = round(2^F exp(-k s)), k < 2^r (ties to even; e_i ~ 2^F exp(-d_i s));
      S = sum e_i (>= 2^F: a largest logit has e = 2^F exactly),  A = sum e_i d_i;
      b = bitlength(S) - 1, t = S >> (b - M), k = t - 2^M, f = S - (t << (b - M)),
      lnS = (b - F) * ln2_fix + ln_table[k] + ((ln_table[k+1] - ln_table[k]) * f >> (b - M)),
        ln_table[k] = round(2^G ln(1 + k / 2^M)), ln2_fix = round(2^G ln 2)  (~2^G ln(S/2^F));
      flag = k_mult * A <= S * (c_fix - lnS),
        k_mult = round(2^G s), c_fix = round(2^G clip(threshold * ln 10, -1, ln n + 1)).
    This is H = s A / S + ln(S / 2^F) <= threshold * ln 10 (H = -sum p ln p in nats) times
    2^G S. Every quantity is an exact int64 (the validator proves K * A and S * h fit).

    Error bound (docs/ir.md, "The early-exit decision"): with X0 = len(exp_hi) s 2^r,
    eta = 3/2 + 2^-(F+2), kappa = |k_mult / (2^G s) - 1|, the integer decision equals the
    exact rule on the real logits z whenever |H10(z) - threshold| > error_bound(s, n) with
      eps = (n-1) eta (X0 + ln n) / 2^F                       (the exp tables)
          + kappa (ln n + that)                               (k_mult)
          + (floor(log2 n) / 2 + 2) 2^-G + 2^-(2M+3) + (n-1) eta / 2^F   (the logarithm)
    in nats, divided by ln 10. Build one with EntropyExit.make().
    """

    threshold: float
    frac_bits: int
    g_bits: int
    shift: int
    ln_bits: int
    k_mult: int
    c_fix: int
    ln2_fix: int
    exp_hi: np.ndarray
    exp_lo: np.ndarray
    ln_table: np.ndarray
    offset: np.ndarray | None = None
    kind = "EntropyExit"

    def __post_init__(self) -> None:
        t = float(self.threshold)
        if math.isnan(t):
            raise IRError("EntropyExit threshold must be a number, got NaN")
        object.__setattr__(self, "threshold", t)
        for name in ("frac_bits", "g_bits", "shift", "ln_bits", "k_mult", "c_fix", "ln2_fix"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("exp_hi", "exp_lo", "ln_table"):
            object.__setattr__(self, name, _i64(getattr(self, name)))
        if self.offset is not None:
            object.__setattr__(self, "offset", _i64(self.offset))
        if not (1 <= self.ln_bits < self.frac_bits <= EXIT_MAX_FRAC_BITS and 0 <= self.shift
                <= EXIT_MAX_SHIFT and 1 <= self.g_bits <= EXIT_MAX_G_BITS):
            raise IRError(f"EntropyExit needs 1 <= ln_bits < frac_bits <= {EXIT_MAX_FRAC_BITS}, "
                          f"0 <= shift <= {EXIT_MAX_SHIFT}, 1 <= g_bits <= {EXIT_MAX_G_BITS}; "
                          f"got F={self.frac_bits}, r={self.shift}, M={self.ln_bits}, "
                          f"G={self.g_bits}")

    @classmethod
    def make(cls, threshold: float, scale: float, n: int, offset=None,
             frac_bits: int = 24, ln_bits: int = 8) -> "EntropyExit":
        """The decision for n logits of scale `scale`: r chosen so that the two exp tables are
        as small as possible with at most EXIT_MAX_TABLE entries each (F lowered, down to
        EXIT_MIN_FRAC_BITS, for scales too fine for that), G the largest (<= 40) whose int64
        products provably fit; IRError if no such choice exists."""
        if math.isnan(float(threshold)):
            raise IRError("EntropyExit threshold must be a number, got NaN")
        for f in range(frac_bits, EXIT_MIN_FRAC_BITS - 1, -1):  # fewer bits for fine scales
            try:
                r = exit_shift(scale, f)
            except IRError:
                if f == min(frac_bits, EXIT_MIN_FRAC_BITS):
                    raise
                continue
            frac_bits = f
            break
        g = exit_g_bits(scale, n, frac_bits, r, ln_bits)
        p = exit_params(threshold, scale, n, frac_bits, g, r, ln_bits)
        return cls(threshold=float(threshold), frac_bits=frac_bits, g_bits=g, shift=r,
                   ln_bits=ln_bits, offset=offset, **p)

    def with_threshold(self, threshold: float, scale: float, n: int) -> "EntropyExit":
        """The same construction at another threshold (only c_fix changes)."""
        from dataclasses import replace

        return replace(self, threshold=float(threshold),
                       c_fix=exit_c_fix(float(threshold), n, self.g_bits))

    def error_bound(self, scale: float, n: int) -> float:
        """The margin (base-10 entropy units) beyond which the flag equals the exact rule."""
        return exit_error_bound(scale, n, self.frac_bits, self.g_bits, self.shift,
                                self.ln_bits, len(self.exp_hi), self.k_mult) / math.log(10)

    def ops_per_frame(self, n: int) -> int:
        """Vector-unit operations for one frame of n logits (what sims.mapping counts): per
        logit add the offset, compare with the running max, subtract from the max, split d
        (shift, mask), read two tables, multiply and round-shift, add to S, multiply by d and
        add to A (12); per frame find S's leading bit (1), cut its index and fraction (3), read
        two table entries (2), interpolate (subtract, multiply, shift, add: 4), form h
        (multiply, two subtracts: 3), the two products (2) and the comparison (1): 16."""
        return 12 * n + 16


#: limits of the EntropyExit construction
EXIT_MAX_TABLE = 4096     # entries of each exp table
EXIT_MAX_SHIFT = 12       # so exp_lo has at most 4096 entries
EXIT_MAX_FRAC_BITS = 30
EXIT_MIN_FRAC_BITS = 16   # what make() may lower F to (tables reach d s = (F+1) ln 2)
EXIT_MAX_G_BITS = 40
_DEC_PREC = 60            # decimal digits for the tables (exp and ln correctly rounded)


def _dec_round(v) -> int:
    """round half to even of a Decimal."""
    from decimal import ROUND_HALF_EVEN

    return int(v.to_integral_value(rounding=ROUND_HALF_EVEN))


def exit_shift(scale: float, frac_bits: int) -> int:
    """r for EntropyExit: the exp tables cover d*s up to (F+1) ln 2 (beyond it 2^F exp(-d s) <
    1/2); the hi table has about (F+1) ln 2 / (s 2^r) entries and the lo table 2^r: the r
    that minimises their sum with both at most EXIT_MAX_TABLE."""
    reach = (frac_bits + 1) * math.log(2)
    best = None
    for r in range(EXIT_MAX_SHIFT + 1):
        t = math.floor(reach / (scale * 2.0**r)) + 2
        if t <= EXIT_MAX_TABLE and (best is None or t + 2**r < best[0]):
            best = (t + 2**r, r)
    if best is None:
        raise IRError(f"EntropyExit: logit scale {scale!r} is too fine: the exp tables would "
                      f"need more than {EXIT_MAX_TABLE} entries each")
    return best[1]


@lru_cache(maxsize=32)
def exit_exp_tables(scale: float, frac_bits: int, shift: int) -> tuple[tuple, tuple]:
    """(exp_hi, exp_lo) of EntropyExit, correctly rounded (decimal arithmetic)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = _DEC_PREC
        one = Decimal(2) ** frac_bits
        s = Decimal(float(scale))
        step = s * (2 ** shift)
        half = Decimal(1) / 2
        hi = []
        while True:
            v = one * (-(step * len(hi))).exp()
            if v < half:
                break
            if len(hi) >= EXIT_MAX_TABLE + 2:
                raise IRError(f"EntropyExit: exp table for scale {scale!r}, shift {shift} "
                              f"exceeds {EXIT_MAX_TABLE} entries")
            hi.append(_dec_round(v))
        lo = [_dec_round(one * (-(s * k)).exp()) for k in range(2 ** shift)]
    return tuple(hi), tuple(lo)


@lru_cache(maxsize=32)
def exit_ln_table(g_bits: int, ln_bits: int) -> tuple[tuple, int]:
    """(ln_table, ln2_fix): round(2^G ln(1 + k/2^M)) for k = 0..2^M, and round(2^G ln 2)."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = _DEC_PREC
        one = Decimal(2) ** g_bits
        m = Decimal(2) ** ln_bits
        tab = tuple(_dec_round(one * (1 + k / m).ln()) for k in range(2**ln_bits + 1))
        return tab, _dec_round(one * Decimal(2).ln())


def exit_c_fix(threshold: float, n: int, g_bits: int) -> int:
    """round(2^G clip(threshold ln 10, -1, ln n + 1)): beyond the clip the decision is
    constant either way (0 <= H <= ln n and the integer H is within eps < 1 of H), so
    nothing is lost."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = _DEC_PREC
        hi = Decimal(n).ln() + 1
        if threshold == math.inf:
            c = hi
        elif threshold == -math.inf:
            c = Decimal(-1)
        else:
            c = min(max(Decimal(float(threshold)) * Decimal(10).ln(), Decimal(-1)), hi)
        return _dec_round(c * Decimal(2) ** g_bits)


def exit_k_mult(scale: float, g_bits: int) -> int:
    return round(Fraction(float(scale)) * 2**g_bits)  # Fraction rounds half to even


def exit_params(threshold: float, scale: float, n: int, frac_bits: int, g_bits: int,
                shift: int, ln_bits: int) -> dict:
    """Every derived field of EntropyExit (the validator recomputes and compares them)."""
    hi, lo = exit_exp_tables(float(scale), frac_bits, shift)
    ln, ln2 = exit_ln_table(g_bits, ln_bits)
    return {"k_mult": exit_k_mult(scale, g_bits), "c_fix": exit_c_fix(threshold, n, g_bits),
            "ln2_fix": ln2, "exp_hi": np.array(hi, np.int64), "exp_lo": np.array(lo, np.int64),
            "ln_table": np.array(ln, np.int64)}


def exit_int64_bounds(scale: float, n: int, frac_bits: int, g_bits: int, shift: int,
                      ln_bits: int) -> dict:
    """Worst cases of EntropyExit's int64 intermediates over every input (docs/ir.md):
    d < 2^34 (|q - zq| <= 2^32, |offset| < 2^31); e <= 2^F; a term e*d with e > 0 has
    j = d >> r < len(exp_hi), and e <= exp_hi[j] (exp_lo <= 2^F), so e*d <= max_j
    exp_hi[j] ((j+1) 2^r - 1) and A <= (n-1) times that (a largest logit has d = 0);
    S <= n 2^F; |h| <= max(|c_fix|, |c_fix - floor(log2 n) ln2_fix - ln_table[-1]|) over
    the clip range of c_fix; the interpolation product < (ln_table[1] - ln_table[0]) 2^(b-M)
    with b <= F + floor(log2 n)."""
    F, G, r, M = frac_bits, g_bits, shift, ln_bits
    hi, _ = exit_exp_tables(float(scale), F, r)
    ln, ln2 = exit_ln_table(G, M)
    ed = max((e * ((j + 1) * 2**r - 1) for j, e in enumerate(hi)), default=0)
    a_max = (n - 1) * ed
    k = exit_k_mult(scale, G)
    lb = (n.bit_length() - 1)
    c_lo, c_hi = exit_c_fix(-math.inf, n, G), exit_c_fix(math.inf, n, G)
    h_max = max(abs(c_hi), abs(c_lo - lb * ln2 - ln[-1]))
    s_max = n * 2**F
    return {"k_mult": k, "k_times_a": k * a_max, "s_times_h": s_max * h_max,
            "interp": (ln[1] - ln[0]) * 2 ** (F + lb - M), "product": 2 ** (2 * F) + 2**(F - 1)}


def exit_g_bits(scale: float, n: int, frac_bits: int, shift: int, ln_bits: int) -> int:
    """The largest G <= EXIT_MAX_G_BITS whose int64 products fit with a factor 2 to spare."""
    for g in range(EXIT_MAX_G_BITS, 0, -1):
        if max(exit_int64_bounds(scale, n, frac_bits, g, shift, ln_bits).values()) < 2**62:
            if exit_k_mult(scale, g) < 1:
                break
            return g
    raise IRError(f"EntropyExit: no G gives a nonzero k_mult = round(2^G * {scale!r}) within "
                  f"int64 for {n} logits")


def exit_error_bound(scale: float, n: int, frac_bits: int, g_bits: int, shift: int,
                     ln_bits: int, hi_size: int, k_mult: int) -> float:
    """eps in nats (EntropyExit's docstring): beyond it the integer flag is exact."""
    F, G = frac_bits, g_bits
    s = float(scale)
    eta = 1.5 + 2.0 ** -(F + 2)
    x0 = hi_size * s * 2.0**shift
    ln_n = math.log(n)
    e1 = (n - 1) * eta * (x0 + ln_n) / 2.0**F
    kappa = abs(float(Fraction(k_mult) / (Fraction(s) * 2**G)) - 1.0)
    e2 = kappa * (ln_n + e1)
    e3 = ((n.bit_length() - 1) / 2 + 2) * 2.0**-G + 2.0 ** -(2 * ln_bits + 3) \
        + (n - 1) * eta / 2.0**F
    return (e1 + e2 + e3) * (1 + 1e-9)  # a hair for this float evaluation itself


OPS: dict[str, type[Op]] = {c.kind: c for c in
                            (Quantize, Conv, Dense, Requant, MaxPool, AvgPool, Add, Concat,
                             Reshape, Dequantize, Lut, Mul, GateMix, GRU, EntropyExit)}


# ---------------------------------------------------------------- fixed-point multipliers

def fixed_multiplier(m: Fraction, max_shift: int = 62, strip: bool = True,
                     bits: int = 31) -> tuple[int, int]:
    """Best `bits`-bit mantissa and shift with mantissa / 2^shift ~= m (exact when m is a
    dyadic rational whose numerator fits the mantissa, e.g. every power of two).

    The mantissa is normalised to 2^(bits-1) <= |mantissa| < 2^bits where the shift range
    allows, so the relative error is at most 2^-bits (bits=31: an int32 multiplier).
    strip=True removes trailing zero bits of the mantissa (same value, smaller shift); keep
    them when an offset needs the fine grid.
    """
    m = Fraction(m)
    if m == 0:
        return 0, 0
    mag = abs(m)
    # smallest shift s with |m| * 2^s >= 2^30
    shift = bits - 1 - _floor_log2(mag)
    shift = min(shift, max_shift)
    if shift < 0:
        raise IRError(f"multiplier {float(m):.6g} too large for a {bits}-bit mantissa with shift >= 0")
    mant = _round_half_even(m * (1 << shift))
    if abs(mant) >= 2**bits:  # rounding carried into the next bit
        shift -= 1
        mant = _round_half_even(m * (1 << shift))
    # strip trailing zero bits so exact dyadic multipliers print small
    while strip and shift > 0 and mant % 2 == 0:
        mant //= 2
        shift -= 1
    return int(mant), int(shift)


def fixed_offset(b: Fraction, shift: int) -> int:
    """An offset in units of 2^-shift output LSBs: round(b * 2^shift), ties to even."""
    return _round_half_even(Fraction(b) * (1 << shift))


def _floor_log2(q: Fraction) -> int:
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1
    return e


def _round_half_even(q: Fraction) -> int:
    return round(q)  # Fraction.__round__ rounds half to even
