"""Numba kernels of the synthetic generator's channel and final scaling.

Each kernel does, one frame per iteration and the frames spread over Numba's threads, what
`synthetic._apply_channel_numpy` and the end of `synthesize` do with whole-array numpy steps;
the arithmetic is the same float32 operations in the same order, so the two give the same bits
(`tests/data/test_data_synthetic.py` and `benchmarks/bench_synthetic.py` compare them). The
random draws stay in numpy, in the same order, so a seed gives the same frames either way.
Imported lazily: loading the data package does not import Numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def channel_frames(x, taps, lo, fading, we, frac, block, base, sro, rot, out):
    """x complex64 (n, width) modulated samples -> out complex64 (n, length).

    fading: y[t] = sum_j taps[i, j] * x[t + lo - sh_j], sh_j = j - (FIR//2 - 1), for the
    interior t in [0, width - 2*lo); the first tap's product starts the sum.
    sro: out[t] = sum_{k=-2..3} w_k(t) * y[base + k + t], w_k(t) = we[k, i, b] + (we[k, i, b+1]
    - we[k, i, b]) * frac[t] with b = t // block, the first k starting the sum; otherwise
    out[t] = y[base + t]. Then out[t] *= rot[i, t]."""
    n, width = x.shape
    length = out.shape[1]
    n_fir = taps.shape[1]
    half = n_fir // 2 - 1
    inner = width - 2 * lo
    for i in prange(n):
        yr = np.empty(width, dtype=np.float32)
        yi = np.empty(width, dtype=np.float32)
        if fading:
            for t in range(inner):
                tr = taps[i, 0].real
                ti = taps[i, 0].imag
                v = x[i, t + lo + half]
                ar = tr * v.real - ti * v.imag
                ai = tr * v.imag + ti * v.real
                for j in range(1, n_fir):
                    tr = taps[i, j].real
                    ti = taps[i, j].imag
                    v = x[i, t + lo - (j - half)]
                    ar += tr * v.real - ti * v.imag
                    ai += tr * v.imag + ti * v.real
                yr[t] = ar
                yi[t] = ai
        else:
            for t in range(width):
                yr[t] = x[i, t].real
                yi[t] = x[i, t].imag
        for t in range(length):
            if sro:
                b = t // block
                f = frac[t]
                sr = np.float32(0.0)
                si = np.float32(0.0)
                for k in range(6):
                    w0 = we[k, i, b]
                    w = w0 + (we[k, i, b + 1] - w0) * f
                    if k == 0:
                        sr = w * yr[base + k - 2 + t]
                        si = w * yi[base + k - 2 + t]
                    else:
                        sr += w * yr[base + k - 2 + t]
                        si += w * yi[base + k - 2 + t]
            else:
                sr = yr[base + t]
                si = yi[base + t]
            c = rot[i, t]
            out[i, t] = complex(sr * c.real - si * c.imag, sr * c.imag + si * c.real)


@njit(cache=True, parallel=True)
def finish_frames(signal, noise_re, noise_im, noise_std, frame_power, out, sig_out, noise_out):
    """Per frame i: signal scaled to unit mean power (sequential float32 sum of |s|^2, divided
    by the length), plus noise * noise_std[i]; the sum scaled to mean power frame_power;
    out[i, 0] / out[i, 1] get its real / imaginary parts. With components (sig_out.shape[0] >
    0), sig_out and noise_out get the scaled signal and noise. `signal` is scaled in place."""
    n, length = signal.shape
    keep = sig_out.shape[0] > 0
    fl = np.float32(length)
    for i in prange(n):
        acc = np.float32(0.0)
        for t in range(length):
            v = signal[i, t]
            acc += v.real * v.real + v.imag * v.imag
        g1 = np.float32(1.0) / np.sqrt(max(acc / fl, np.float32(1e-30)))
        std = noise_std[i]
        tot = np.float32(0.0)
        for t in range(length):
            v = signal[i, t]
            sr = v.real * g1
            si = v.imag * g1
            signal[i, t] = complex(sr, si)
            xr = sr + noise_re[i, t] * std
            xi = si + noise_im[i, t] * std
            out[i, 0, t] = xr
            out[i, 1, t] = xi
            tot += xr * xr + xi * xi
        gain = np.sqrt(np.float32(frame_power) / (tot / fl))
        for t in range(length):
            out[i, 0, t] *= gain
            out[i, 1, t] *= gain
        if keep:
            for t in range(length):
                v = signal[i, t]
                sig_out[i, t] = complex(v.real * gain, v.imag * gain)
                noise_out[i, t] = complex(noise_re[i, t] * std * gain,
                                          noise_im[i, t] * std * gain)


@njit(cache=True, parallel=True)
def shape_frames(sym, h, lags, out):
    """Polyphase pulse shaping: sym float32 (n, n_sym, R) rails, h float32 (len(lags), SPS)
    taps per symbol lag, out float32 (n, n_sym, SPS, R): out[i, m, p, r] = sum over the lags j
    in order with 0 <= m - j < n_sym of sym[i, m - j, r] * h[jj, p], starting from 0."""
    n, n_sym, rails = sym.shape
    sps = h.shape[1]
    for i in prange(n):
        for m in range(n_sym):
            for p in range(sps):
                for r in range(rails):
                    acc = np.float32(0.0)
                    for jj in range(lags.size):
                        s = m - lags[jj]
                        if 0 <= s < n_sym:
                            acc += sym[i, s, r] * h[jj, p]
                    out[i, m, p, r] = acc
