"""`amchw data synth|info`: synthetic RadioML files written, data files described."""

from __future__ import annotations


import click

from .common import fail, fail_with, group, progress_bar

#: amchw.data.synthetic.PROFILES' names, spelled here so the CLI starts without numpy
#: (a test checks they agree)
PROFILE_NAMES = ("rml2016", "rml2016-1024", "rml2016b", "rml2018")


@group("data")
def data_group() -> None:
    """RadioML data: generate synthetic files, describe and convert real ones."""


@data_group.command("synth")
@click.option("--profile", type=click.Choice(sorted(PROFILE_NAMES)), default="rml2016",
              show_default=True, help="Class list, frame length and SNR grid to imitate.")
@click.option("--per-class-snr", "per", type=click.IntRange(1), required=True,
              help="Frames per (class, SNR) pair.")
@click.option("--snrs", default=None,
              help="Comma-separated SNRs in dB (default: the profile's grid).")
@click.option("--channel", type=click.Choice(["radioml", "awgn"]), default="radioml",
              show_default=True, help="radioml: RML2016's channel; awgn: carrier phase + noise.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the generator (the same seed gives the same frames).")
@click.option("-o", "--output", "out_path", required=True, help="HDF5 file to write.")
def data_synth_cmd(profile, per, snrs, channel, seed, out_path):
    """Write synthetic frames in the RadioML 2018.01A HDF5 layout (X (N, L, 2), Y one-hot,
    Z SNR, class names as an attribute), class by class with a progress bar, atomically."""
    from amchw.data.radioml import synth_to_h5
    from amchw.data.synthetic import MAX_SNR_DB, PROFILES

    try:
        snr_list = PROFILES[profile].snrs if snrs is None else tuple(
            int(v) for v in snrs.split(","))
    except ValueError:
        raise click.BadParameter(f"{snrs!r} is not a comma-separated list of integers",
                                 param_hint="--snrs") from None
    bad = [v for v in snr_list if abs(v) > MAX_SNR_DB]
    if bad:
        raise click.BadParameter(f"SNR {bad[0]} dB is outside +-{MAX_SNR_DB} dB (at such SNRs "
                                 "the noise or the signal underflows to nothing)",
                                 param_hint="--snrs")
    n_cls = len(PROFILES[profile].classes)
    with progress_bar(n_cls, f"{profile}: {n_cls} classes x {len(snr_list)} SNRs x "
                      f"{per}") as bar:
        try:
            info = synth_to_h5(out_path, profile, per, snr_list, seed=seed, channel=channel,
                               progress=bar.update)
        except (OSError, ValueError) as e:
            fail(str(e))
    click.echo(f"wrote {out_path}: {info['frames']:,} frames of {info['length']} samples, "
               f"{info['classes']} classes, SNRs {min(snr_list)}..{max(snr_list)} dB, "
               f"{info['seconds']:.1f} s ({info['frames'] / info['seconds']:,.0f} frames/s)")


@data_group.command("info")
@click.argument("path")
def data_info_cmd(path):
    """Describe a data file: RadioML 2018.01A or amchw HDF5, a RadioML 2016.10A/10B or RML22
    pickle."""
    import numpy as np

    from amchw.data.radioml import DatasetError, open_frames

    try:
        with open_frames(path, "none") as r:
            y, snr, classes, n, length = r.labels, r.snrs, r.classes, r.n, r.length
            dataset = r.dataset
            x = r.frames(np.arange(min(n, 256)))
    except DatasetError as e:
        fail_with(e)
    power = float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1))) if n else 0.0
    counts = np.bincount(y, minlength=len(classes))
    click.echo(f"{path}: {dataset}, {n:,} frames of 2 x {length}, {len(classes)} classes, "
               f"SNR {snr.min()}..{snr.max()} dB, mean frame power {power:.3g} (first "
               f"{min(n, 256)} frames as stored)")
    for c, k in zip(classes, counts):
        click.echo(f"  {c:<10} {k:>9,}")


@data_group.command("convert")
@click.argument("src")
@click.option("-o", "--output", "out_path", required=True, help="HDF5 file to write.")
@click.option("--normalize", type=click.Choice(["auto", "unit-power", "l1", "peak", "none"]),
              default="auto", show_default=True,
              help="How each frame is scaled before it is stored: auto is unit-power for a "
                   "pickle (the generator's scale), none for HDF5.")
@click.option("--snr-range", default=None, metavar="LO:HI",
              help="Keep only frames with SNR in [LO, HI] dB.")
def data_convert_cmd(src, out_path, normalize, snr_range):
    """Write a RadioML 2016.10A/10B or RML22 pickle, or a RadioML 2018.01A file, as amchw's
    HDF5 (the RadioML 2018 layout with class names), in chunks, atomically."""
    from amchw.data.radioml import DatasetError, convert_to_h5
    from amchw.data.splits import parse_snr_range

    try:
        snrs = parse_snr_range(snr_range)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--snr-range") from None
    try:
        info = convert_to_h5(src, out_path, normalize, snrs)
    except (DatasetError, OSError) as e:
        fail_with(e)
    click.echo(f"wrote {out_path}: {info['frames']:,} frames of {info['length']} samples, "
               f"{info['classes']} classes from {info['dataset']} ({src}), scaled "
               f"{info['normalize']}, {info['seconds']:.1f} s")
