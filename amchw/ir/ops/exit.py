"""EntropyExit: the early-exit decision (is the entropy of softmax(logits) below a
threshold?) in int64 arithmetic, and the construction of its tables (correctly rounded) with
the bounds that prove its products fit and its error bound (docs/ir.md, "The early-exit
decision")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..types import IRError, QType
from .base import INT64_MAX, Op, Vector, i64, qtype, register

#: the type of EntropyExit's per-frame flag (codes 0 and 1)
EXIT_FLAG = QType(8, False, False, (1.0,), 0)

@register
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

    kernels = {"exit": ("entropy_exit_i32_ref", "entropy_exit_i32", "entropy_exit_i32")}

    def infer(self, name, ins, bnd):
        """Per-tensor 1-D logit codes; the tables and constants must be exactly the ones its
        (threshold, scale, n, F, G, r, M) define, and its int64 products must fit."""
        x = ins[0]
        xt = qtype(name, self, x, "logits")
        if len(x.shape) != 1 or x.shape[0] < 1:
            raise IRError(f"node {name!r} (EntropyExit): logits must be 1-D (n,), got {x.shape}")
        if xt.per_channel:
            raise IRError(f"node {name!r} (EntropyExit): per-channel logit scales are not "
                          "supported (the logits' differences need one scale)")
        n, s = x.shape[0], xt.scale[0]
        if self.offset is not None:
            if self.offset.shape != (n,):
                raise IRError(f"node {name!r} (EntropyExit): offset has {self.offset.size} "
                              f"entries for {n} logits")
            if np.abs(self.offset).max() >= 2**31:
                raise IRError(f"node {name!r} (EntropyExit): offsets must lie in (-2^31, 2^31)")
        try:
            want = exit_params(self.threshold, s, n, self.frac_bits, self.g_bits, self.shift,
                               self.ln_bits)
            bounds = exit_int64_bounds(s, n, self.frac_bits, self.g_bits, self.shift,
                                       self.ln_bits)
        except IRError as e:
            raise IRError(f"node {name!r} (EntropyExit): {e}") from None
        for k, v in want.items():
            got = getattr(self, k)
            same = (np.array_equal(got, v) and got.dtype == v.dtype) \
                if isinstance(v, np.ndarray) else got == v
            if not same:
                raise IRError(f"node {name!r} (EntropyExit): {k} is not the one threshold "
                              f"{self.threshold!r}, logit scale {s!r}, {n} logits, "
                              f"F={self.frac_bits}, G={self.g_bits}, r={self.shift}, "
                              f"M={self.ln_bits} define")
        for k, v in bounds.items():
            if v > INT64_MAX:
                raise IRError(f"node {name!r} (EntropyExit): int64 intermediate {k} can reach "
                              f"{v} > 2^63-1")
        return (), EXIT_FLAG

    def run(self, args, in_types, impl):
        off = self.offset if self.offset is not None else np.zeros(1, np.int64)
        return impl["exit"](np.ascontiguousarray(args[0]), off, in_types[0].zero_point,
                            self.shift, self.exp_hi, self.exp_lo, self.frac_bits,
                            self.ln_table, self.ln_bits, self.k_mult, self.c_fix, self.ln2_fix)

    def work(self, in_shapes, out_shape):
        # one flag per frame from n logits (ops_per_frame: 12 a logit, 16 a frame)
        return Vector(self.ops_per_frame(int(np.prod(in_shapes[0]))))

    def __post_init__(self) -> None:
        t = float(self.threshold)
        if math.isnan(t):
            raise IRError("EntropyExit threshold must be a number, got NaN")
        object.__setattr__(self, "threshold", t)
        for name in ("frac_bits", "g_bits", "shift", "ln_bits", "k_mult", "c_fix", "ln2_fix"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("exp_hi", "exp_lo", "ln_table"):
            object.__setattr__(self, name, i64(getattr(self, name)))
        if self.offset is not None:
            object.__setattr__(self, "offset", i64(self.offset))
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
        hi: list[int] = []
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
