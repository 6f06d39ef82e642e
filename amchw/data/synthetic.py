"""A synthetic RadioML-like generator: real modulators, RML2016's channel (sample-rate offset,
Rician multipath, carrier phase and frequency offset) and AWGN at a true SNR. numpy only,
vectorised over frames, seeded by an np.random.Generator.

Invariant: for every frame, mean|signal|^2 / mean-power-of-noise = 10^(snr/10) by construction
(full-band SNR), and X = signal + noise after one common per-frame scale.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .model_inputs import MODEL_INPUTS

__all__ = [
    "CLASSES_2016",
    "CLASSES_2018",
    "SNRS_2016",
    "SNRS_2018",
    "PROFILES",
    "Profile",
    "Components",
    "Channel",
    "CHANNELS",
    "rrc_taps",
    "synthesize",
    "frames_for",
]

CLASSES_2016 = (
    "8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64", "QPSK", "WBFM",
)
# argmax(Y) order of GOLD_XYZ_OSC.0001_1024.hdf5 (its classes.txt is in a different order).
CLASSES_2018 = (
    "OOK", "4ASK", "8ASK", "BPSK", "QPSK", "8PSK", "16PSK", "32PSK", "16APSK", "32APSK",
    "64APSK", "128APSK", "16QAM", "32QAM", "64QAM", "128QAM", "256QAM", "AM-SSB-WC", "AM-SSB-SC",
    "AM-DSB-WC", "AM-DSB-SC", "FM", "GMSK", "OQPSK",
)
SNRS_2016 = tuple(range(-20, 19, 2))
SNRS_2018 = tuple(range(-20, 31, 2))

SPS = 8  # samples per symbol of every digital modulation
ROLLOFF = 0.35  # root-raised-cosine roll-off
RRC_SPAN = 6  # RRC half-length in symbols (taps = 2 * RRC_SPAN * SPS + 1)
FREQ_OFFSET_MAX = 1e-3  # default carrier-frequency offset bound, cycles per sample
#: the largest |SNR| a file may ask for: beyond it the noise (or the signal) underflows in the
#: frames' float32 and the frames are no longer what their label says (NaN at +-1000 dB)
MAX_SNR_DB = 100


@dataclass(frozen=True)
class Profile:
    """A dataset look-alike: class list, frame length, SNR grid and output frame power."""

    name: str
    classes: tuple[str, ...]
    length: int
    snrs: tuple[int, ...]
    frame_power: float  # mean(I^2 + Q^2) of every output frame (signal + noise)


PROFILES = {
    # Unit power: the dataset's L1 normalisation (mean |x| = 1/128) would put almost every sample
    # below the 2^-6 step of the 8-bit [-2, 2] input quantizer.
    "rml2016": Profile("rml2016", CLASSES_2016, 128, SNRS_2016, frame_power=1.0),
    # Power 0.5: I and Q have RMS 0.5, so even noise-like frames stay inside [-2, 2] up to 4 sigma.
    "rml2018": Profile("rml2018", CLASSES_2018, 1024, SNRS_2018, frame_power=0.5),
    # RadioML 2016's 11 classes at 1024 samples: the frame length of MATLAB's AMC example,
    # whose classes are the same 11 (its CNN is the compression seed's "original" model)
    "rml2016-1024": Profile("rml2016-1024", CLASSES_2016, 1024, SNRS_2016, frame_power=0.5),
    # RadioML 2016.10B: 2016.10A's classes without AM-SSB (10), 2x128 frames; the dataset of the
    # early-exit seed (its models have 10 outputs)
    "rml2016b": Profile("rml2016b", tuple(c for c in CLASSES_2016 if c != "AM-SSB"), 128,
                        SNRS_2016, frame_power=1.0),
}


@dataclass(frozen=True)
class Components:
    """The split of X: X = signal + noise (as complex (N, L) arrays, same per-frame scale)."""

    signal: np.ndarray
    noise: np.ndarray


# --- pulse shapes ---------------------------------------------------------------------------


def rrc_taps(sps: int = SPS, rolloff: float = ROLLOFF, span: int = RRC_SPAN) -> np.ndarray:
    """Root-raised-cosine taps, 2*span*sps+1 long, scaled so sum(h^2) = sps.

    With that scaling, symbols of unit mean power give a waveform of unit mean power.
    """
    t = np.arange(-span * sps, span * sps + 1) / sps  # time in symbols
    b = rolloff
    h = np.empty_like(t)
    at0 = np.isclose(t, 0.0)
    at_sing = np.isclose(np.abs(t), 1.0 / (4.0 * b))
    reg = ~(at0 | at_sing)
    tr = t[reg]
    h[reg] = (np.sin(np.pi * tr * (1 - b)) + 4 * b * tr * np.cos(np.pi * tr * (1 + b))) / (
        np.pi * tr * (1 - (4 * b * tr) ** 2)
    )
    h[at0] = 1 - b + 4 * b / np.pi
    h[at_sing] = (b / np.sqrt(2)) * (
        (1 + 2 / np.pi) * np.sin(np.pi / (4 * b)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * b))
    )
    return h * np.sqrt(sps / np.sum(h**2))


def _gaussian_taps(bt: float, sps: int = SPS, span: int = 2) -> np.ndarray:
    """Gaussian frequency-smoothing filter of bandwidth-time product `bt`, unit DC gain."""
    t = np.arange(-span * sps, span * sps + 1) / sps
    sigma = np.sqrt(np.log(2.0)) / (2 * np.pi * bt)  # in symbols
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Linear convolution of every row with `taps`, 'same' alignment (FFT-based)."""
    n = x.shape[-1] + taps.size - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.ifft(np.fft.fft(x, nfft, axis=-1) * np.fft.fft(taps, nfft), axis=-1)
    start = (taps.size - 1) // 2
    y = y[..., start : start + x.shape[-1]]
    return y if np.iscomplexobj(x) else y.real


def _crop(x: np.ndarray, length: int, margin: int, rng: np.random.Generator) -> np.ndarray:
    """Rows x[i, margin + o_i : margin + o_i + length], o_i uniform in [0, SPS): random timing."""
    offs = margin + rng.integers(0, SPS, size=x.shape[0])
    win = np.lib.stride_tricks.sliding_window_view(x, length, axis=1)
    return win[np.arange(x.shape[0]), offs]


# --- constellations (unit mean power) ---------------------------------------------------------


def _unit_power(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.complex128)
    return points / np.sqrt(np.mean(np.abs(points) ** 2))


def _psk(m: int, rotation: float = 0.0) -> np.ndarray:
    return np.exp(1j * (2 * np.pi * np.arange(m) / m + rotation))


def _pam(m: int) -> np.ndarray:
    return _unit_power(np.arange(-(m - 1), m, 2))


def _qam(m: int) -> np.ndarray:
    """Square QAM, or cross QAM (32, 128): the odd-integer square grid minus its corners."""
    side = int(np.ceil(np.sqrt(m)))
    side += side % 2
    levels = np.arange(-(side - 1), side, 2)
    grid = (levels[:, None] + 1j * levels[None, :]).ravel()
    corner = np.minimum(np.abs(grid.real), np.abs(grid.imag))
    keep = np.argsort(-corner, kind="stable")[grid.size - m :]  # drop the most "cornered" points
    return _unit_power(grid[np.sort(keep)])


def _apsk(rings: tuple[int, ...], radii: tuple[float, ...]) -> np.ndarray:
    """Concentric PSK rings (DVB-S2 style), ring k rotated by pi/n_k."""
    pts = [r * _psk(n, np.pi / n) for n, r in zip(rings, radii)]
    return _unit_power(np.concatenate(pts))


_CONSTELLATIONS: dict[str, Callable[[], np.ndarray]] = {
    "BPSK": lambda: _psk(2),
    "QPSK": lambda: _psk(4, np.pi / 4),
    "8PSK": lambda: _psk(8),
    "16PSK": lambda: _psk(16),
    "32PSK": lambda: _psk(32),
    "PAM4": lambda: _pam(4),
    "4ASK": lambda: _pam(4),
    "8ASK": lambda: _pam(8),
    "OOK": lambda: _unit_power([0.0, 1.0]),
    "QAM16": lambda: _qam(16),
    "QAM64": lambda: _qam(64),
    "16QAM": lambda: _qam(16),
    "32QAM": lambda: _qam(32),
    "64QAM": lambda: _qam(64),
    "128QAM": lambda: _qam(128),
    "256QAM": lambda: _qam(256),
    "16APSK": lambda: _apsk((4, 12), (1.0, 2.7)),
    "32APSK": lambda: _apsk((4, 12, 16), (1.0, 2.64, 4.64)),
    "64APSK": lambda: _apsk((4, 12, 20, 28), (1.0, 2.4, 4.0, 5.6)),
    "128APSK": lambda: _apsk((8, 16, 24, 32, 48), (1.0, 2.0, 3.0, 4.0, 5.0)),
}


# --- modulators: (rng, n, length) -> complex (n, length) baseband, before impairments ---------


def _shape_symbols(sym: np.ndarray, taps: np.ndarray, *, compiled: bool = True) -> np.ndarray:
    """Upsample by SPS and filter with `taps`, polyphase: output sample SPS*m + p is
    sum_j sym[m - j] * taps[SPS*j + p - center], i.e. a few shifted products instead of an
    FFT over mostly-zero samples. 'same' alignment, like _filter on the upsampled stream.
    A complex stream is filtered rail by rail (a real tap scales each rail exactly as numpy's
    complex-by-real product does). compiled=True runs the Numba kernel (amchw/data/
    _channel.py), compiled=False the numpy twin; they give the same bits."""
    n, n_sym = sym.shape
    center = (taps.size - 1) // 2
    cplx = np.iscomplexobj(sym)
    sym = sym.astype(np.complex64 if cplx else np.float32)
    taps = taps.astype(np.float32)
    lags, rows = [], []
    # taps index k = SPS*j + p - center for output phase p and symbol lag j
    for j in range(-(center // SPS) - 1, (taps.size - center) // SPS + 2):
        k = SPS * j + np.arange(SPS) + center
        ok = (k >= 0) & (k < taps.size)
        if ok.any():
            lags.append(j)
            rows.append(np.where(ok, taps[np.clip(k, 0, taps.size - 1)], 0.0))
    h = np.asarray(rows, dtype=np.float32)
    if compiled:
        from ._channel import shape_frames

        rails = sym.view(np.float32).reshape(n, n_sym, 2) if cplx else sym[:, :, None]
        out = np.empty((n, n_sym, SPS, rails.shape[2]), dtype=np.float32)
        shape_frames(np.ascontiguousarray(rails), h, np.asarray(lags, dtype=np.int64), out)
        flat = out.reshape(n, n_sym * SPS * rails.shape[2])
        return flat.view(np.complex64) if cplx else flat
    out = np.zeros((n, n_sym, SPS), dtype=sym.dtype)
    for j, hj in zip(lags, h):
        if j >= 0:
            out[:, j:, :] += sym[:, : n_sym - j, None] * hj[None, None, :]
        else:
            out[:, : n_sym + j, :] += sym[:, -j:, None] * hj[None, None, :]
    return out.reshape(n, n_sym * SPS)


def _linear(name: str, rng: np.random.Generator, n: int, length: int,
            compiled: bool = True) -> np.ndarray:
    """Random symbols -> upsample by SPS -> RRC pulse; OQPSK delays Q by half a symbol."""
    const = _CONSTELLATIONS["QPSK" if name == "OQPSK" else name]()
    taps = rrc_taps()
    margin = RRC_SPAN * SPS + SPS
    n_sym = -(-(length + 2 * margin) // SPS)
    sym = const[rng.integers(0, const.size, size=(n, n_sym))]
    if name == "OQPSK":
        i = _shape_symbols(sym.real, taps, compiled=compiled)
        q = np.roll(_shape_symbols(sym.imag, taps, compiled=compiled), SPS // 2, axis=1)
        wave = i + 1j * q
    else:
        wave = _shape_symbols(sym, taps, compiled=compiled)
    return _crop(wave, length, margin, rng)


def _cpm(rng: np.random.Generator, n: int, length: int, h: float, bt: float | None) -> np.ndarray:
    """Binary continuous-phase FSK: phase += pi*h*f[k]/SPS per sample, f the (Gaussian-smoothed)
    NRZ symbol stream, so the phase never jumps (CPFSK for bt=None, GFSK/GMSK otherwise)."""
    margin = 4 * SPS
    n_sym = -(-(length + 2 * margin) // SPS)
    bits = rng.integers(0, 2, size=(n, n_sym)) * 2.0 - 1.0
    freq = np.repeat(bits, SPS, axis=1)
    if bt is not None:
        freq = _filter(freq, _gaussian_taps(bt))
    phase = np.cumsum(np.pi * h * freq / SPS, axis=1)
    return _crop(np.exp(1j * phase), length, margin, rng)


def _message(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """Band-limited random 'audio': white Gaussian noise with an FFT brick-wall low-pass at a
    random cutoff in [0.01, 0.05] cycles/sample, scaled to peak |m| = 1 per frame."""
    nfft = 2 * length
    spec = np.fft.rfft(rng.standard_normal((n, nfft)), axis=1)
    freqs = np.fft.rfftfreq(nfft)
    cutoff = rng.uniform(0.01, 0.05, size=(n, 1))
    spec[freqs[None, :] > cutoff] = 0.0
    spec[:, 0] = 0.0  # no DC: the carrier, if any, is added explicitly
    m = np.fft.irfft(spec, nfft, axis=1)[:, :length]
    return m / np.max(np.abs(m), axis=1, keepdims=True)


def _analytic(m: np.ndarray) -> np.ndarray:
    """m + j*Hilbert(m) via the FFT (negative frequencies removed): upper-sideband SSB."""
    length = m.shape[1]
    spec = np.fft.fft(m, axis=1)
    gain = np.zeros(length)
    gain[0] = 1.0
    gain[1 : (length + 1) // 2] = 2.0
    if length % 2 == 0:
        gain[length // 2] = 1.0
    return np.fft.ifft(spec * gain, axis=1)


# RadioML 2016's analog classes modulate recorded speech (a podcast episode) sampled at 200 kHz.
# Speech is quiet most of the time: most 128-sample frames (0.64 ms) fall in a pause, and in the
# original data the carrier holds ~0.998 of AM-DSB's power (envelope variation ~3%) and ~0.9
# of WBFM's, whose instantaneous frequency deviates by ~0.007 cycles/sample (std). The source
# below is calibrated to those figures (docs/data.md, "Analog sources"):
SPEECH_RATE = 200e3            # samples/s of the modulated signal
SPEECH_BAND = (100.0, 4000.0)  # Hz: the voice band
SPEECH_TILT = 500.0            # Hz: spectrum falls 6 dB/octave above this corner
SPEECH_ACTIVE = 0.3            # fraction of frames inside a talk spurt (the rest are pauses)
SPEECH_LEVEL_DB = (-25.0, 6.0)  # talk-spurt RMS level, dB re full scale: mean, std (log-normal)
HISS_DB = -35.0                # recording noise floor (100 Hz - 20 kHz), dB re full scale
WBFM_PREEMPHASIS = 75e-6       # s: broadcast FM pre-emphasis time constant
WBFM_DEVIATION = 0.05          # cycles/sample of instantaneous frequency per unit audio


def _shaped_noise(rng: np.random.Generator, n: int, length: int, gain: np.ndarray) -> np.ndarray:
    """Real Gaussian noise with amplitude spectrum `gain` (on rfftfreq(4 * length)), unit RMS
    per frame."""
    nfft = 4 * length
    spec = (rng.standard_normal((n, gain.size)) + 1j * rng.standard_normal((n, gain.size)))
    x = np.fft.irfft(spec * gain, nfft, axis=1)[:, :length]
    return x / np.sqrt(np.mean(x**2, axis=1, keepdims=True))


def _speech(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """Speech-like audio in [-1, 1] full scale: per frame, a talk spurt (probability
    SPEECH_ACTIVE; voice-band noise with a -6 dB/octave tilt at a log-normal level) or a
    pause, plus a broadband recording-noise floor."""
    f = np.fft.rfftfreq(4 * length) * SPEECH_RATE
    lo, hi = SPEECH_BAND
    voice = np.where((f >= lo) & (f <= hi), 1.0 / (1.0 + f / SPEECH_TILT), 0.0)
    hiss = np.where((f >= lo) & (f <= 20e3), 1.0, 0.0)
    active = rng.random((n, 1)) < SPEECH_ACTIVE
    mean_db, std_db = SPEECH_LEVEL_DB
    level = 10.0 ** ((mean_db + std_db * rng.standard_normal((n, 1))) / 20.0)
    return (active * level * _shaped_noise(rng, n, length, voice)
            + 10.0 ** (HISS_DB / 20.0) * _shaped_noise(rng, n, length, hiss))


def _preemphasis(a: np.ndarray, tau: float) -> np.ndarray:
    """First-order pre-emphasis 1 + j 2 pi f tau (FFT, zero-padded to twice the length)."""
    length = a.shape[1]
    spec = np.fft.rfft(a, 2 * length, axis=1)
    f = np.fft.rfftfreq(2 * length) * SPEECH_RATE
    return np.fft.irfft(spec * (1.0 + 2j * np.pi * f * tau), 2 * length, axis=1)[:, :length]


def _am_dsb_speech(rng, n, length):
    """RadioML 2016's AM-DSB: carrier plus speech at modulation index 1 (1 + a(t))."""
    return (1.0 + _speech(rng, n, length)).astype(np.complex128)


def _wbfm_speech(rng, n, length):
    """RadioML 2016's WBFM: pre-emphasised speech drives the instantaneous frequency."""
    dev = WBFM_DEVIATION * _preemphasis(_speech(rng, n, length), WBFM_PREEMPHASIS)
    return np.exp(2j * np.pi * np.cumsum(dev, axis=1))


def _am_dsb(rng, n, length, carrier: bool):
    m = _message(rng, n, length)
    if not carrier:
        return m.astype(np.complex128)
    mu = rng.uniform(0.2, 0.5, size=(n, 1))  # full carrier, small modulation index
    return (1.0 + mu * m).astype(np.complex128)


def _am_ssb(rng, n, length, carrier: bool):
    s = _analytic(_message(rng, n, length))
    if not carrier:
        return s
    mu = rng.uniform(0.2, 0.5, size=(n, 1))
    return 1.0 + mu * s


def _fm(rng, n, length):
    """Frequency modulation: instantaneous frequency dev * m, dev in [0.05, 0.15] cycles/sample."""
    m = _message(rng, n, length)
    dev = rng.uniform(0.05, 0.15, size=(n, 1))
    return np.exp(2j * np.pi * np.cumsum(dev * m, axis=1))


_ANALOG_AND_CPM: dict[str, Callable] = {
    "CPFSK": lambda rng, n, L: _cpm(rng, n, L, h=0.5, bt=None),
    # GNU Radio's sensitivity 0.1 rad/sample at 8 samples/symbol is h = 0.1 * 8 / pi.
    "GFSK": lambda rng, n, L: _cpm(rng, n, L, h=0.1 * SPS / np.pi, bt=0.35),
    "GMSK": lambda rng, n, L: _cpm(rng, n, L, h=0.5, bt=0.3),
    "AM-DSB": _am_dsb_speech,
    "AM-DSB-WC": lambda rng, n, L: _am_dsb(rng, n, L, carrier=True),
    "AM-DSB-SC": lambda rng, n, L: _am_dsb(rng, n, L, carrier=False),
    "AM-SSB": lambda rng, n, L: _am_ssb(rng, n, L, carrier=False),
    "AM-SSB-WC": lambda rng, n, L: _am_ssb(rng, n, L, carrier=True),
    "AM-SSB-SC": lambda rng, n, L: _am_ssb(rng, n, L, carrier=False),
    "WBFM": _wbfm_speech,
    "FM": _fm,
}


def _modulate(name: str, rng: np.random.Generator, n: int, length: int,
              compiled: bool = True) -> np.ndarray:
    if name in _ANALOG_AND_CPM:
        return _ANALOG_AND_CPM[name](rng, n, length)
    if name in _CONSTELLATIONS or name == "OQPSK":
        return _linear(name, rng, n, length, compiled)
    raise ValueError(f"no modulator for {name!r}")


# --- the generator ------------------------------------------------------------------------------


def _profile(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


@dataclass(frozen=True)
class Channel:
    """The channel between modulator and receiver, after RML2016's GNU Radio dynamic channel
    model (docs/sources.md, How RadioML 2016 was generated), in units of the sample rate
    (200 kHz there):

    - sample-rate offset: the receiver samples at (1 + e) times the transmitter's rate, e
      uniform in [-sro_max, sro_max] per frame (GNU Radio: a random walk bounded by 50 Hz at
      200 kHz, 2.5e-4); applied by cubic (Catmull-Rom) interpolation, with a random timing
      phase;
    - Rician multipath (`fading`): paths at delays (samples) with magnitudes; the first path
      has a line-of-sight part of K-factor rician_k, the others are Rayleigh. With 1 Hz Doppler
      at 200 kHz a 1024-sample frame sees at most 0.03 rad of fading phase change, so each
      frame draws one channel (block fading) from the sum-of-sinusoids model's distribution;
      fractional delays use an 8-tap windowed-sinc interpolator, as GNU Radio's model does;
    - carrier: a random phase and a frequency offset uniform in [-cfo_max, cfo_max]
      cycles/sample (GNU Radio: a random walk bounded by 500 Hz, 2.5e-3; its step, 0.01 Hz,
      moves the offset by under 1e-6 cycles/sample within a frame, so it is constant here).
    """

    cfo_max: float = 500.0 / 200e3
    sro_max: float = 50.0 / 200e3
    fading: bool = True
    rician_k: float = 4.0
    delays: tuple[float, ...] = (0.0, 0.9, 1.7)
    mags: tuple[float, ...] = (1.0, 0.8, 0.3)


CHANNELS = {
    "radioml": Channel(),
    # carrier phase only: no offsets, no fading (for measuring a modulation's own signature)
    "awgn": Channel(cfo_max=0.0, sro_max=0.0, fading=False),
}
_PAD = 8  # extra modulated samples on each side for interpolation and multipath
_BLOCK = 128  # sample-rate offset: interpolation weights exact every _BLOCK samples


def _catmull_rom(a: np.ndarray) -> np.ndarray:
    """The Catmull-Rom cubic interpolation kernel at distance a >= 0 (support [0, 2))."""
    return np.where(a < 1, (1.5 * a - 2.5) * a * a + 1,
                    np.where(a < 2, ((-0.5 * a + 2.5) * a - 4) * a + 2, 0.0))
_FIR = 8  # multipath interpolator taps


def _multipath_taps(ch: Channel, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, _FIR) complex taps per frame: sum over paths of gain x windowed sinc at the delay."""
    k = np.arange(_FIR) - (_FIR // 2 - 1)       # tap positions, latency _FIR//2 - 1 samples
    win = np.hamming(_FIR + 2)[1:-1]
    taps = np.zeros((n, _FIR), dtype=np.complex128)
    for p, (d, m) in enumerate(zip(ch.delays, ch.mags)):
        scatter = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2.0)
        if p == 0:
            los = np.exp(2j * np.pi * rng.uniform(size=n))
            g = np.sqrt(ch.rician_k / (ch.rician_k + 1)) * los \
                + np.sqrt(1 / (ch.rician_k + 1)) * scatter
        else:
            g = scatter
        kern = np.sinc(k - d) * win
        taps += (m * g)[:, None] * (kern / kern.sum())[None, :]
    return taps


def _channel_draws(x_shape, length: int, ch: Channel, rng: np.random.Generator):
    """The channel's random draws for n frames, in a fixed order (multipath taps, then the
    sample-rate offset and timing phase, then the carrier), and the float32 tables both channel
    implementations read: taps (n, _FIR) complex64 or None; we (6, n, nb + 1) float32, the
    Catmull-Rom weights of neighbours j = -2..3 at every _BLOCK-th sample, and frac (length,)
    float32, the position of each sample between its block's two edges, or None without a
    sample-rate offset; rot (n, length) complex64, the carrier phase and frequency offset."""
    n, width = x_shape
    taps = _multipath_taps(ch, n, rng).astype(np.complex64) if ch.fading else None
    we = frac = None
    # sample-rate offset and timing: read x at base + t + d(t), d(t) = u + t * e with u the
    # timing phase; |t * e| < 1 for these frame lengths, so d stays in (-1, 2) and six fixed
    # neighbours x[base + t + j], j = -2..3, carry every cubic (Catmull-Rom) weight
    if ch.sro_max > 0:
        if ch.sro_max * length >= 1:
            raise ValueError("sro_max * frame length must be below one sample")
        e = rng.uniform(-ch.sro_max, ch.sro_max, size=(n, 1))
        u = rng.uniform(0.0, 1.0, size=(n, 1))
        # weights exact at every _BLOCK-th sample and linear in between: d moves by under
        # sro_max * _BLOCK = 0.03 samples per block, so the error is below 1e-3 of a weight
        # and the weights still sum to one
        nb = -(-length // _BLOCK)
        edges = np.minimum(np.arange(nb + 1) * _BLOCK, length - 1)
        tau = (np.arange(nb * _BLOCK) - np.repeat(edges[:-1], _BLOCK)).astype(np.float32)
        span = np.maximum(np.diff(edges), 1)
        frac = (tau / np.repeat(span, _BLOCK).astype(np.float32))[:length]
        d_edges = u + edges[None, :] * e                       # (n, nb + 1), float64
        we = np.stack([_catmull_rom(np.abs(d_edges - j)).astype(np.float32)
                       for j in range(-2, 4)])
    # carrier phase and frequency offset
    phase0 = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    f0 = rng.uniform(-ch.cfo_max, ch.cfo_max, size=(n, 1))
    arg = (phase0 + 2 * np.pi * f0 * np.arange(length)[None, :]).astype(np.float32)
    rot = (np.cos(arg) + 1j * np.sin(arg)).astype(np.complex64)
    return taps, we, frac, rot


def _apply_channel(x: np.ndarray, length: int, ch: Channel, rng: np.random.Generator,
                   *, compiled: bool = True):
    """x: complex (n, length + 2*_PAD) modulated samples -> (n, length) received samples.

    Multipath: y[t] = sum_j taps[j] x[t - sh_j], sh_j = j - (_FIR//2 - 1) in [-3, 4], on the
    interior [4, width - 4) only, which covers every sample read after it. Sample-rate offset:
    out[t] = sum_{j=-2..3} w_j(t) y[t + j], w_j linear between the exact Catmull-Rom weights at
    the block edges. Then the carrier rotation. compiled=False runs the numpy twin
    (_apply_channel_numpy), which gives the same bits."""
    x = np.ascontiguousarray(x, dtype=np.complex64)
    taps, we, frac, rot = _channel_draws(x.shape, length, ch, rng)
    if not compiled:
        return _apply_channel_numpy(x, length, taps, we, frac, rot)
    from ._channel import channel_frames

    n = x.shape[0]
    lo = _FIR // 2
    base = _PAD - lo if taps is not None else _PAD
    out = np.empty((n, length), dtype=np.complex64)
    no_taps = np.zeros((n, _FIR), dtype=np.complex64)
    no_we = np.zeros((6, n, 2), dtype=np.float32)
    channel_frames(x, no_taps if taps is None else taps, lo, taps is not None,
                   no_we if we is None else we,
                   np.zeros(length, np.float32) if frac is None else frac,
                   _BLOCK, base, we is not None, rot, out)
    return out


def _cmul(ar, ai, br, bi):
    """Complex product from float32 parts, each operation rounded on its own (no fused
    multiply-add, whatever numpy's SIMD loops do with complex64 on this CPU)."""
    return ar * br - ai * bi, ar * bi + ai * br


def _apply_channel_numpy(x, length, taps, we, frac, rot):
    """The channel as whole-array numpy steps on float32 real and imaginary parts: the twin of
    the compiled kernel (amchw/data/_channel.py), same operations in the same order."""
    n, width = x.shape
    xr, xi = x.real, x.imag
    base = _PAD
    if taps is not None:
        lo, hi = _FIR // 2, width - _FIR // 2
        yr = yi = None
        for j in range(_FIR):
            sh = j - (_FIR // 2 - 1)
            tr, ti = _cmul(taps[:, j, None].real, taps[:, j, None].imag,
                           xr[:, lo - sh:hi - sh], xi[:, lo - sh:hi - sh])
            if yr is None:
                yr, yi = tr, ti
            else:
                yr, yi = yr + tr, yi + ti
        xr, xi, base = yr, yi, _PAD - lo
    if we is not None:
        b = np.arange(length) // _BLOCK
        outr = outi = None
        for k, j in enumerate(range(-2, 4)):
            w0 = we[k][:, b]
            w = w0 + (we[k][:, b + 1] - w0) * frac[None, :]
            tr = w * xr[:, base + j:base + j + length]
            ti = w * xi[:, base + j:base + j + length]
            if outr is None:
                outr, outi = tr, ti
            else:
                outr, outi = outr + tr, outi + ti
    else:
        outr, outi = xr[:, base:base + length], xi[:, base:base + length]
    rr, ri = _cmul(outr, outi, rot.real, rot.imag)
    out = np.empty((n, length), dtype=np.complex64)
    out.real, out.imag = rr, ri
    return out


COMPILED_MIN_FRAMES = 2048


def synthesize(
    profile: str | Profile,
    n_per_class_snr: int,
    snrs=None,
    seed: int | np.random.Generator = 0,
    *,
    channel: str | Channel = "radioml",
    freq_offset_max: float | None = None,
    return_components: bool = False,
    compiled: bool | None = None,
):
    """Generate labelled frames: for each class (profile order), for each SNR, n frames.

    Returns (X float32 (N, 2, L), y int64 (N,), snr int64 (N,)), rows 0/1 of X being I/Q,
    N = n_classes * len(snrs) * n_per_class_snr, L = 128 (rml2016) or 1024 (rml2018).
    With return_components=True a fourth item, Components(signal, noise), gives the complex
    (N, L) parts with X = signal + noise (before the float32 cast).

    Per frame: modulator -> channel (Channel: sample-rate offset, Rician multipath, carrier
    phase and frequency offset; "awgn" keeps only a random carrier phase; freq_offset_max
    overrides the channel's cfo_max) -> scaled to unit mean power mean(|s|^2) = 1 over the
    frame -> complex white Gaussian noise of power 10^(-snr/10) (variance 10^(-snr/10)/2 per
    rail). SNR is TRUE and full-band: mean received signal power over the frame divided by the
    noise power over the whole sampled band (no in-band correction). Finally signal and noise
    get one common scale so mean(|x|^2) over the frame equals the profile's frame_power (1.0
    for rml2016, 0.5 for rml2018 so values mostly fall in the model's input range [-2, 2]); a
    common scale leaves the SNR unchanged. Computed in complex64 (SNRs hold to 1e-6).
    Frame powers are sequential float32 sums over the frame, divided by its length.

    Pulse shaping, the channel and the final scaling run as Numba kernels over the frames
    (amchw/data/_channel.py) with compiled=True, as their numpy twins with compiled=False; the
    two give the same bits. None (the default) takes the kernels from COMPILED_MIN_FRAMES
    frames on, where they pay for loading them (a few tenths of a second), the twins below.
    """
    prof = _profile(profile)
    ch = CHANNELS[channel] if isinstance(channel, str) and channel in CHANNELS else channel
    if not isinstance(ch, Channel):
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    if freq_offset_max is not None:
        ch = replace(ch, cfo_max=float(freq_offset_max))
    snr_list = np.asarray(prof.snrs if snrs is None else snrs, dtype=np.int64).reshape(-1)
    if n_per_class_snr < 0:
        raise ValueError(f"n_per_class_snr must be >= 0, got {n_per_class_snr}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    length = prof.length
    per_class = snr_list.size * n_per_class_snr
    n_total = len(prof.classes) * per_class
    if compiled is None:
        compiled = n_total >= COMPILED_MIN_FRAMES
    raw = np.empty((n_total, length + 2 * _PAD), dtype=np.complex64)
    for c, name in enumerate(prof.classes):
        raw[c * per_class : (c + 1) * per_class] = _modulate(name, rng, per_class,
                                                             length + 2 * _PAD, compiled)
    y = np.repeat(np.arange(len(prof.classes), dtype=np.int64), per_class)
    snr = np.tile(np.repeat(snr_list, n_per_class_snr), len(prof.classes))
    signal = _apply_channel(raw, length, ch, rng, compiled=compiled)

    # AWGN with noise power 10^(-snr/10) relative to the unit-power signal.
    noise_std = np.sqrt(10.0 ** (-snr / 10.0) / 2.0).astype(np.float32)
    noise_re = rng.standard_normal((n_total, length), dtype=np.float32)
    noise_im = rng.standard_normal((n_total, length), dtype=np.float32)
    X, sig, noise = _finish(signal, noise_re, noise_im, noise_std, prof.frame_power,
                            return_components, compiled)
    if return_components:
        return X, y, snr, Components(signal=sig, noise=noise)
    return X, y, snr


def _finish(signal, noise_re, noise_im, noise_std, frame_power, components, compiled):
    """Unit signal power per frame, plus the noise, scaled to mean power frame_power:
    (X (n, 2, L) float32, scaled signal, scaled noise (complex64, or None without
    components)). Powers are sequential float32 sums over the frame divided by L."""
    n, length = signal.shape
    if compiled:
        from ._channel import finish_frames

        X = np.empty((n, 2, length), dtype=np.float32)
        m = n if components else 0
        sig = np.empty((m, length), dtype=np.complex64)
        noise = np.empty((m, length), dtype=np.complex64)
        finish_frames(signal, noise_re, noise_im, noise_std, float(frame_power), X, sig, noise)
        return (X, sig, noise) if components else (X, None, None)
    fl = np.float32(length)
    sr, si = signal.real, signal.imag
    power = np.cumsum(sr * sr + si * si, axis=1)[:, -1:] / fl
    g1 = np.float32(1.0) / np.sqrt(np.maximum(power, np.float32(1e-30)))
    sr, si = sr * g1, si * g1
    std = noise_std[:, None]
    xr = sr + noise_re * std
    xi = si + noise_im * std
    gain = np.sqrt(np.float32(frame_power) / (np.cumsum(xr * xr + xi * xi, axis=1)[:, -1:] / fl))
    X = np.stack([xr * gain, xi * gain], axis=1)
    if not components:
        return X, None, None
    sig = np.empty((n, length), dtype=np.complex64)
    sig.real, sig.imag = sr * gain, si * gain
    noise = np.empty((n, length), dtype=np.complex64)
    noise.real, noise.imag = noise_re * std * gain, noise_im * std * gain
    return X, sig, noise


def _calibration_snrs(prof: Profile) -> tuple[int, ...]:
    """A spread of SNRs for calibration: every 4 dB from -10 dB to the profile's maximum."""
    return tuple(s for s in prof.snrs if s >= -10 and (s + 10) % 4 == 0)


def frames_for(
    model_name_or_profile: str, n: int, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """n float32 frames spread over every class and SNRs from -10 dB up, shuffled.

    A profile name ("rml2016", "rml2018") gives (n, 2, L); a zoo model name (e.g. "vgg10",
    "vtcnn2") gives frames of that model's profile reshaped to its input shape (from
    amchw.data.model_inputs; the torch zoo is not imported).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    shape = None
    if model_name_or_profile in PROFILES:
        prof = PROFILES[model_name_or_profile]
    else:
        if model_name_or_profile not in MODEL_INPUTS:
            raise ValueError(
                f"{model_name_or_profile!r} is neither a profile ({', '.join(PROFILES)}) "
                f"nor a zoo model ({', '.join(sorted(MODEL_INPUTS))})"
            )
        entry = MODEL_INPUTS[model_name_or_profile]
        prof, shape = PROFILES[entry.profile], entry.input_shape
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    snrs = _calibration_snrs(prof)
    per = -(-n // (len(prof.classes) * len(snrs)))
    X, _, _ = synthesize(prof, per, snrs, rng)
    X = X[rng.permutation(X.shape[0])[:n]]
    return X if shape is None else X.reshape((n,) + shape)
