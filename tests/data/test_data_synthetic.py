"""Synthetic generator: layout, determinism, true SNR and physical properties of modulations."""
import subprocess
import sys

import numpy as np
import pytest

from amchw.data import synthetic as syn
from amchw.data.synthetic import (
    CLASSES_2016,
    CLASSES_2018,
    PROFILES,
    SNRS_2016,
    SNRS_2018,
    frames_for,
    rrc_taps,
    synthesize,
)


def test_class_lists():
    assert len(CLASSES_2016) == 11 and list(CLASSES_2016) == sorted(CLASSES_2016)
    # argmax(Y) order of RML2018.01A (docs/sources.md, RadioML 2018.01A), not its classes.txt order.
    assert " ".join(CLASSES_2018) == (
        "OOK 4ASK 8ASK BPSK QPSK 8PSK 16PSK 32PSK 16APSK 32APSK 64APSK 128APSK 16QAM 32QAM "
        "64QAM 128QAM 256QAM AM-SSB-WC AM-SSB-SC AM-DSB-WC AM-DSB-SC FM GMSK OQPSK"
    )
    assert SNRS_2016 == tuple(range(-20, 19, 2)) and SNRS_2018 == tuple(range(-20, 31, 2))
    # RadioML 2016.10B: 10.A's classes without AM-SSB, in the same (sorted) order
    assert PROFILES["rml2016b"].classes == tuple(c for c in CLASSES_2016 if c != "AM-SSB")
    from amchw.cli import PROFILE_NAMES

    assert sorted(PROFILE_NAMES) == sorted(PROFILES)


@pytest.mark.parametrize("profile, n_cls, length", [("rml2016", 11, 128), ("rml2018", 24, 1024),
                                                    ("rml2016b", 10, 128)])
def test_shapes_labels_dtypes(profile, n_cls, length):
    snrs = [-10, 0, 10]
    X, y, snr = synthesize(profile, 3, snrs, seed=0)
    n = n_cls * len(snrs) * 3
    assert X.shape == (n, 2, length) and X.dtype == np.float32
    assert y.shape == snr.shape == (n,) and y.dtype == snr.dtype == np.int64
    # Layout: by class, then SNR, then frame.
    assert np.array_equal(y, np.repeat(np.arange(n_cls), 9))
    assert np.array_equal(snr[:9], np.repeat(snrs, 3)) and np.array_equal(snr[9:18], snr[:9])
    assert np.isfinite(X).all()
    power = np.mean(X[:, 0].astype(np.float64) ** 2 + X[:, 1].astype(np.float64) ** 2, axis=1)
    assert np.allclose(power, PROFILES[profile].frame_power, rtol=1e-5)


def test_default_snrs_and_errors():
    _, _, snr = synthesize("rml2016", 1, seed=0)
    assert np.array_equal(np.unique(snr), SNRS_2016)
    with pytest.raises(ValueError, match="profile"):
        synthesize("rml2017", 1, seed=0)
    with pytest.raises(ValueError):
        synthesize("rml2016", -1, seed=0)


def test_determinism():
    a = synthesize("rml2018", 2, [0, 10], seed=11)
    b = synthesize("rml2018", 2, [0, 10], seed=np.random.default_rng(11))
    c = synthesize("rml2018", 2, [0, 10], seed=12)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    state = np.random.get_state()[1].copy()
    synthesize("rml2016", 2, seed=1)
    assert np.array_equal(np.random.get_state()[1], state)  # no global RNG use


@pytest.mark.parametrize("profile", ["rml2016", "rml2018"])
def test_true_snr(profile):
    snrs = [-10, 0, 10, 20]
    X, y, snr, parts = synthesize(profile, 20, snrs, seed=5, return_components=True)
    x = X[:, 0].astype(np.float64) + 1j * X[:, 1]
    assert np.allclose(x, parts.signal + parts.noise, atol=1e-6)
    measured = np.mean(np.abs(parts.signal) ** 2, 1) / np.mean(np.abs(parts.noise) ** 2, 1)
    for s in snrs:
        db = 10 * np.log10(np.mean(measured[snr == s]))
        assert abs(db - s) < 0.5, (s, db)
    # The noise is white and circular: I and Q have equal power and are uncorrelated.
    nz = parts.noise[snr == 0]
    assert np.mean(nz.real**2) == pytest.approx(np.mean(nz.imag**2), rel=0.05)
    assert abs(np.mean(nz.real * nz.imag)) < 0.02 * np.mean(np.abs(nz) ** 2)


def test_rrc_is_nyquist():
    h = rrc_taps()
    assert np.sum(h**2) == pytest.approx(syn.SPS)
    rc = np.convolve(h, h)  # RRC * RRC = raised cosine: zero ISI at symbol spacing
    mid = rc.size // 2
    isi = rc[mid % syn.SPS :: syn.SPS] / rc[mid]
    isi[mid // syn.SPS] = 0.0
    assert np.max(np.abs(isi)) < 2e-3


@pytest.mark.parametrize(
    "m, corners", [(16, False), (32, True), (64, False), (128, True), (256, False)]
)
def test_qam_constellations(m, corners):
    c = syn._qam(m)
    assert c.size == m and np.unique(np.round(c, 9)).size == m
    assert np.mean(np.abs(c) ** 2) == pytest.approx(1.0)
    assert np.mean(c) == pytest.approx(0.0, abs=1e-12)
    # Cross QAM lacks the corners of its square grid: the largest |I| never meets the largest |Q|.
    peak = np.max(np.abs(c.real))
    has_corner = np.any(np.isclose(np.abs(c.real), peak) & np.isclose(np.abs(c.imag), peak))
    assert has_corner == (not corners)


def _class_signal(profile, name, n=40, snr=30):
    _, y, _, parts = synthesize(
        profile, n, [snr], seed=9, channel="awgn", return_components=True
    )
    return parts.signal[y == PROFILES[profile].classes.index(name)]


@pytest.mark.parametrize(
    "name, order", [("BPSK", 2), ("QPSK", 4), ("8PSK", 8), ("16PSK", 16)]
)
def test_psk_after_matched_filter(name, order):
    """At the zero-ISI instant of the matched filter, M-PSK has constant modulus and its M-th
    power has one phase (|mean(u^M)| = 1) while its M/2-th power does not."""
    h = rrc_taps()
    for s in _class_signal("rml2018", name, n=10):
        mf = np.convolve(s, h, mode="valid")
        phases = np.stack([mf[p :: syn.SPS][: mf.size // syn.SPS] for p in range(syn.SPS)])
        cv = np.std(np.abs(phases), 1) / np.mean(np.abs(phases), 1)
        z = phases[np.argmin(cv)]
        u = z / np.abs(z)
        assert cv.min() < 0.01
        assert abs(np.mean(u**order)) > 0.99
        assert abs(np.mean(u ** (order // 2))) < 0.5


@pytest.mark.parametrize(
    "profile, name", [("rml2016", "CPFSK"), ("rml2016", "GFSK"), ("rml2016", "WBFM"),
                      ("rml2018", "GMSK"), ("rml2018", "FM")],
)
def test_constant_envelope(profile, name):
    s = _class_signal(profile, name, n=5)
    env = np.abs(s)
    assert np.max(np.std(env, 1) / np.mean(env, 1)) < 1e-6  # complex64 arithmetic
    # Continuous phase: no sample-to-sample jump beyond the peak frequency deviation.
    assert np.max(np.abs(np.angle(s[:, 1:] * np.conj(s[:, :-1])))) < 0.5 * np.pi


@pytest.mark.parametrize("profile, name, one_sided", [
    ("rml2016", "AM-SSB", True), ("rml2018", "AM-SSB-SC", True), ("rml2018", "AM-DSB-SC", False),
])
def test_sidebands(profile, name, one_sided):
    """SSB is a real signal with one sideband (not noise); DSB-SC has both, symmetric."""
    s = _class_signal(profile, name, n=20)
    if profile == "rml2016":
        # 128 samples resolve 0.008 cycles/sample, about the message's lowest cutoff: measure
        # the same modulator over 1024 samples
        s = syn._modulate(name, np.random.default_rng(4), 20, 1024)
    # a Hann window: the frame is a crop of a longer signal, and a rectangular window's
    # leakage would put a few percent of the power on the other side
    spec = np.abs(np.fft.fft(s * np.hanning(s.shape[1]), axis=1)) ** 2
    f = np.fft.fftfreq(s.shape[1])
    neg = spec[:, f < 0].sum(1) / spec.sum(1)
    if one_sided:
        assert np.max(neg) < 0.02
    else:
        assert np.all(np.abs(neg - 0.5) < 0.05)
    # Band-limited: almost all power below 0.1 cycles/sample (noise would fill the band); a Hann
    # window keeps the leakage of the non-periodic frame out of the measurement.
    wspec = np.abs(np.fft.fft(s * np.hanning(s.shape[1]), axis=1)) ** 2
    assert np.min(wspec[:, np.abs(f) < 0.1].sum(1) / wspec.sum(1)) > 0.98


def test_am_with_carrier_has_carrier():
    s = _class_signal("rml2018", "AM-DSB-WC", n=10)
    dc = np.abs(np.mean(s, 1)) ** 2 / np.mean(np.abs(s) ** 2, 1)
    assert np.all(dc > 0.8)  # small modulation index: most power in the carrier


@pytest.fixture(scope="module")
def analog_2016():
    """RadioML 2016's analog classes through the carrier-phase-only channel, 1,500 frames each."""
    _, y, _, parts = synthesize("rml2016", 1500, [30], seed=11, channel="awgn",
                                return_components=True)
    return {name: parts.signal[y == CLASSES_2016.index(name)].astype(np.complex128)
            for name in ("AM-DSB", "WBFM")}


def test_am_dsb_matches_the_original_recipe(analog_2016):
    """The original recipe's AM-DSB (speech, quiet most of the time, at modulation index 1):
    the carrier holds ~0.998 of the power and the envelope varies by ~3% (docs/sources.md)."""
    s = analog_2016["AM-DSB"]
    carrier = np.abs(s.mean(1)) ** 2 / np.mean(np.abs(s) ** 2, 1)
    env = np.abs(s)
    variation = np.std(env, 1) / np.mean(env, 1)
    assert 0.997 <= carrier.mean() <= 0.999
    assert 0.02 <= variation.mean() <= 0.04
    # a pause is still a signal: the carrier (not a deep modulation) is what every frame shows
    assert np.quantile(carrier, 0.1) > 0.99


def test_wbfm_matches_the_original_recipe(analog_2016):
    """The original recipe's WBFM: the carrier holds ~0.9 of the power and the instantaneous
    frequency deviates by ~0.007 cycles/sample (std over all samples) (docs/sources.md)."""
    s = analog_2016["WBFM"]
    carrier = np.abs(s.mean(1)) ** 2 / np.mean(np.abs(s) ** 2, 1)
    inst = np.angle(s[:, 1:] * np.conj(s[:, :-1])) / (2 * np.pi)
    assert 0.87 <= carrier.mean() <= 0.93
    assert 0.0055 <= inst.std() <= 0.0085
    # speech with pauses: most frames sit near the carrier, talk spurts spread far wider
    assert np.median(carrier) > 0.95 and np.quantile(carrier, 0.1) < 0.8


def _through(ch, x, length, seed=0):
    return syn._apply_channel(x.astype(np.complex64), length, ch, np.random.default_rng(seed))


def test_sample_rate_offset_scales_time():
    """A tone through the channel with only the sample-rate offset comes out at f * (1 + e),
    |e| <= sro_max, with the cubic interpolation's error small."""
    from dataclasses import replace

    ch = replace(syn.CHANNELS["awgn"], sro_max=2.5e-4)
    L, f, n = 1024, 0.01, 400
    t = np.arange(L + 2 * syn._PAD)
    x = np.tile(np.exp(2j * np.pi * f * (t - syn._PAD)), (n, 1))
    y = _through(ch, x, L).astype(np.complex128)
    ph = np.unwrap(np.angle(y * np.conj(y[:, :1])), axis=1)  # the carrier phase cancels
    slope = np.polyfit(np.arange(L), ph.T, 1)[0] / (2 * np.pi * f)
    e = slope - 1
    assert np.max(np.abs(e)) <= 2.5e-4 * 1.01 and np.std(e) > 5e-5
    resid = ph - np.outer(slope * 2 * np.pi * f, np.arange(L))
    resid -= resid.mean(axis=1, keepdims=True)
    assert np.max(np.abs(resid)) < 1e-3 and np.allclose(np.abs(y), 1, atol=2e-3)


def test_rician_fading_statistics():
    """One path of K = 4: |g|^2 has mean 1 and the Rician moments give K back; three paths
    spread the received power by their magnitudes 1, 0.8, 0.3."""
    from dataclasses import replace

    n = 40_000
    one = replace(syn.CHANNELS["radioml"], delays=(0.0,), mags=(1.0,))
    g = syn._multipath_taps(one, n, np.random.default_rng(1)).sum(axis=1)
    p = np.abs(g) ** 2
    gamma = np.var(p) / np.mean(p) ** 2
    k_est = np.sqrt(1 - gamma) / (1 - np.sqrt(1 - gamma))
    assert np.mean(p) == pytest.approx(1.0, rel=0.02) and k_est == pytest.approx(4.0, rel=0.1)
    full = syn._multipath_taps(syn.CHANNELS["radioml"], n, np.random.default_rng(2))
    assert np.mean(np.sum(np.abs(full) ** 2, axis=1)) == pytest.approx(
        1 + 0.8**2 + 0.3**2, rel=0.1)


def test_carrier_offset_bound():
    from dataclasses import replace

    ch = replace(syn.CHANNELS["awgn"], cfo_max=2.5e-3)
    L, n = 128, 2000
    y = _through(ch, np.ones((n, L + 2 * syn._PAD)), L).astype(np.complex128)
    f = np.angle(np.sum(y[:, 1:] * np.conj(y[:, :-1]), axis=1)) / (2 * np.pi)
    assert np.max(np.abs(f)) <= 2.5e-3 * 1.001 and np.max(np.abs(f)) > 2.2e-3


def test_channels_keep_the_true_snr_and_refuse_unknown():
    X, y, snr, parts = synthesize("rml2016", 30, [0, 10], seed=3, return_components=True)
    m = np.mean(np.abs(parts.signal) ** 2, 1) / np.mean(np.abs(parts.noise) ** 2, 1)
    for s_ in (0, 10):
        assert 10 * np.log10(np.mean(m[snr == s_])) == pytest.approx(s_, abs=0.5)
    with pytest.raises(ValueError, match="unknown channel"):
        synthesize("rml2016", 1, channel="rayleigh")


@pytest.mark.parametrize("profile", ["rml2016", "rml2018"])
@pytest.mark.parametrize("channel", ["radioml", "awgn"])
def test_compiled_generator_equals_its_numpy_twin(profile, channel):
    """The Numba kernels (pulse shaping, channel, final scaling) give the numpy twin's bits:
    frames, labels, SNRs and both components."""
    a = synthesize(profile, 2, seed=8, channel=channel, return_components=True,
                   compiled=True)
    b = synthesize(profile, 2, seed=8, channel=channel, return_components=True, compiled=False)
    for u, v in zip(a[:3], b[:3]):
        assert np.array_equal(u, v)
    assert np.array_equal(a[3].signal, b[3].signal) and np.array_equal(a[3].noise, b[3].noise)


@pytest.mark.parametrize("fading,sro", [(True, 0.0), (False, 2.5e-4), (False, 0.0)])
def test_channel_kernel_equals_its_twin_without_some_impairments(fading, sro):
    from dataclasses import replace

    ch = replace(syn.CHANNELS["radioml"], fading=fading, sro_max=sro)
    x = np.random.default_rng(0).standard_normal((30, 128 + 2 * syn._PAD, 2)) @ [1, 1j]
    a = syn._apply_channel(x, 128, ch, np.random.default_rng(1))
    b = syn._apply_channel(x, 128, ch, np.random.default_rng(1), compiled=False)
    assert a.dtype == b.dtype == np.complex64 and np.array_equal(a, b)


def test_frames_for():
    X = frames_for("rml2016", 100, seed=0)
    assert X.shape == (100, 2, 128) and X.dtype == np.float32
    assert np.array_equal(X, frames_for("rml2016", 100, seed=0))
    assert frames_for("rml2018", 30, seed=1).shape == (30, 2, 1024)
    assert frames_for("vtcnn2", 7, seed=0).shape == (7, 1, 2, 128)
    assert frames_for("vgg10", 7, seed=0).shape == (7, 2, 1024)
    assert np.mean(np.abs(frames_for("vgg10", 50, seed=0)) > 2.0) < 1e-3  # inside the input range
    with pytest.raises(ValueError, match="neither"):
        frames_for("nomodel", 3)
    with pytest.raises(ValueError):
        frames_for("rml2016", 0)


def test_frames_for_a_zoo_model_imports_neither_the_zoo_nor_torch():
    """data never imports models: a model's profile and input shape come from
    amchw.data.model_inputs."""
    code = ("import sys; from amchw.data import frames_for; "
            "assert frames_for('ee-v1', 2).shape == (2, 2, 128); "
            "print([m for m in ('amchw.models', 'torch', 'brevitas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
