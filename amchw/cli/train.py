"""`amchw train` (quantization-aware training, resumable) and `amchw eval` (float and integer
accuracy of checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from amchw.data.splits import SPLIT_CHOICES, parse_snr_range

from .common import command, fail, fail_with, progress_bar, quant_options


_NORMALIZE = click.Choice(["auto", "unit-power", "l1", "peak", "none"])


def device_option(f):
    """--device: where the torch side runs (the integer side always runs on the CPU)."""
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                        show_default=True,
                        help="Where torch trains/evaluates: auto is cuda when torch sees a GPU, "
                             "else cpu. The integer model always runs on the CPU.")(f)


@command("train")
@click.option("--model", "model_name", required=True, help="Zoo model to train.")
@click.option("--data", default=None,
              help="HDF5 (amchw's, RadioML 2018.01A) or a RadioML 2016.10A/10B pickle "
                   "(default: a synthetic file of the model's profile, written beside --output).")
@click.option("--normalize", type=_NORMALIZE, default="auto", show_default=True,
              help="How each frame is scaled as it is read (recorded in the checkpoint): "
                   "unit-power mean(I^2+Q^2) = 1, l1 sum|x| = 1, peak max|x| = 1, none; auto: "
                   "unit-power for a pickle (stored L1-normalised), none for HDF5.")
@click.option("--per-class-snr", type=click.IntRange(1), default=None,
              help="Frames per (class, SNR) of the default synthetic file "
                   "(default 200 for rml2016, 40 for rml2018).")
@click.option("-o", "--output", "--out", "out_path", required=True,
              help="Checkpoint to write (and to resume from if it exists).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True,
              help="Epochs in all (float warm-up included).")
@click.option("--float-epochs", type=click.IntRange(0), default=0, show_default=True,
              help="Float warm-up: the first N epochs train with every quantizer off, the "
                   "rest quantization-aware (N < --epochs; only QAT epochs can be the best).")
@click.option("--best-by", type=click.Choice(["loss", "accuracy"]), default="loss",
              show_default=True,
              help="Keep the epoch of lowest validation loss, or of highest validation "
                   "accuracy (the distillation slides' rule).")
@click.option("--float-only", is_flag=True,
              help="Train every epoch in float (quantizers off; the best epoch by float "
                   "validation loss), to quantize afterwards with `amchw compress ptq`.")
@click.option("--stream", is_flag=True,
              help="Fresh synthetic training frames every epoch after the first, generated "
                   "in a background thread from the data file's recipe (an amchw synthetic "
                   "file, as the default); validation and test stay the file's.")
@click.option("--batch-size", type=click.IntRange(2), default=256, show_default=True,
              help="Frames per training step.")
@click.option("--lr", type=float, default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True,
              help="Adam weight decay (L2).")
@click.option("--patience", type=click.IntRange(1), default=3, show_default=True,
              help="Stop after this many epochs without a better validation loss.")
@click.option("--max-train", type=click.IntRange(2), default=None,
              help="Use at most this many training frames.")
@click.option("--per-channel", is_flag=True, help="Per-output-channel weight scales.")
@click.option("--split", "split", type=click.Choice(list(SPLIT_CHOICES)), default="auto",
              show_default=True,
              help="train/val/test: auto = the challenge split for files stored in equal "
                   "(class, SNR) groups, else a seeded 90/10; challenge; 50/50 (the RadioML 2016 "
                   "notebook's, numpy seed 2016); 80/20; 80/10/10; 64/16/20 (seeded by --seed). "
                   "Splits without a val part hold out 10% of train.")
@click.option("--snr-range", default=None, metavar="LO:HI",
              help="Train, validate and test only on frames with SNR in [LO, HI] dB "
                   "(e.g. 0:16; either side may be empty).")
@click.option("--undersample", type=click.IntRange(1), default=None, metavar="N",
              help="Random undersampling with a fixed seed: N frames of every (class, SNR), "
                   "then the split (the GRU-CNN seed's balanced sets).")
@click.option("--schedule", default="cosine", show_default=True,
              help="Learning-rate schedule: cosine, constant or step:EVERY:GAMMA (the rate "
                   "times GAMMA every EVERY epochs; the GRU-CNN seed's is step:20:0.1).")
@device_option
@quant_options
def train_cmd(model_name, data, normalize, per_class_snr, out_path, epochs, float_epochs,
              best_by, float_only,
              stream, batch_size, lr,
              weight_decay, patience, max_train, per_channel, split, snr_range, undersample,
              schedule, device, scales, weight_bits, act_bits, seed):
    """Quantization-aware training of a zoo model; resumes from --output if it exists."""
    from amchw.data.radioml import DatasetError, synth_to_h5
    from amchw.data.synthetic import PROFILES
    from amchw.models import ZOO
    from amchw.train import (TrainConfig, batches_per_epoch, parse_schedule, train,
                             tune_allocator)

    tune_allocator()
    try:
        snrs = parse_snr_range(snr_range)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--snr-range") from None
    try:
        parse_schedule(schedule)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--schedule") from None
    if model_name not in ZOO:
        raise click.BadParameter(f"unknown zoo model {model_name!r}; choose from "
                                 f"{', '.join(sorted(ZOO))}", param_hint="--model")
    if Path(out_path).is_file():   # a run to resume: readable before any data is written
        from amchw.checkpoint import CheckpointError, load

        try:
            load(out_path)
        except CheckpointError as e:
            fail_with(e)
    if data is None:
        prof = ZOO[model_name].profile
        per = per_class_snr or (200 if PROFILES[prof].length <= 128 else 40)
        data = f"{out_path}.{prof}-{per}-seed{seed}.h5"
        if not Path(data).exists():
            click.echo(f"writing synthetic {prof} data ({per} frames per class and SNR) to "
                       f"{data}", err=True)
            synth_to_h5(data, prof, per, PROFILES[prof].snrs, seed=seed)
    cfg = TrainConfig(model=model_name, data=data, out=out_path, epochs=epochs,
                      batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      patience=patience, seed=seed, max_train=max_train, normalize=normalize,
                      device=device, split=split, snr_range=snrs, float_epochs=float_epochs,
                      float_only=float_only, best_by=best_by,
                      stream=stream, undersample=undersample, schedule=schedule,
                      quant={"weight_bits": weight_bits, "act_bits": act_bits,
                             "scales": scales, "per_channel": per_channel})
    bar = {"b": None}   # the current epoch's progress bar, opened by its first batch

    def progress(kind, n):
        if bar["b"] is None:
            bar["b"] = progress_bar(per_epoch, "epoch")
            bar["b"].__enter__()
        bar["b"].update(n)

    def log(msg):
        if bar["b"] is not None:
            bar["b"].__exit__(None, None, None)
            bar["b"] = None
        click.echo(msg, err=True)

    try:
        per_epoch = batches_per_epoch(cfg)
        ck = train(cfg, progress=progress, log=log)
    except (DatasetError, ValueError, OSError) as e:
        fail_with(e)
    best = ck["history"][ck["best_epoch"]] if ck["history"] else None
    n_ep = len(ck["history"])
    click.echo(f"wrote {out_path}: {model_name}, {n_ep} epoch{'' if n_ep == 1 else 's'}, best "
               f"epoch {ck['best_epoch'] + 1}"
               + (f" (val acc {best['val_acc']:.4f})" if best else ""))


@command("eval")
@click.argument("checkpoints", nargs=-1, required=True)
@click.option("--data", required=True,
              help="HDF5 (amchw's, RadioML 2018.01A) or a RadioML 2016.10A/10B pickle.")
@click.option("--normalize", type=_NORMALIZE, default=None,
              help="How each frame is scaled (default: as training scaled frames of this "
                   "kind of file, else auto: unit-power for a pickle, none for HDF5).")
@click.option("--split", type=click.Choice(["test", "val", "all"]), default="test",
              show_default=True, help="Which frames: the checkpoint's test or validation "
              "split of the data file (as training split it), or all of them.")
@click.option("--max-frames", type=click.IntRange(1), default=None,
              help="Evaluate at most this many frames of the split (a seeded random subset).")
@click.option("--confusion", "show_confusion", is_flag=True,
              help="Print the confusion matrices (integer model) as well.")
@click.option("--confusion-snr", "confusion_snrs", type=int, multiple=True,
              help="Also a confusion matrix (and per-class figures) at this SNR in dB "
                   "(repeatable).")
@click.option("--per-class", "show_per_class", is_flag=True,
              help="Print precision, recall, F1 and support per class (integer model), over "
                   "all SNRs and at each --confusion-snr (always in --json).")
@click.option("--plot-accuracy", default=None,
              help="PNG: accuracy vs SNR, one line per checkpoint, float and integer.")
@click.option("--plot-confusion", default=None,
              help="PNG: the first checkpoint's integer confusion matrix over all SNRs as a "
                   "heat map; each --confusion-snr S adds one at S dB, named FILE with .snrS "
                   "before the suffix (e.g. cm.snr10.png). Every file written is listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--snr-range", default=None, metavar="LO:HI",
              help="Only frames with SNR in [LO, HI] dB (within the split).")
@device_option
def eval_cmd(checkpoints, data, normalize, split, max_frames, show_confusion, confusion_snrs,
             show_per_class, plot_accuracy, plot_confusion, as_json, snr_range, device):
    """Accuracy of checkpoints, float (Brevitas) and integer (IR), overall, per SNR and as
    confusion matrices."""
    from amchw.data.radioml import DatasetError
    from amchw.evaluate import evaluate_checkpoint

    try:
        snrs = parse_snr_range(snr_range)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--snr-range") from None
    results = []
    for ck in checkpoints:
        try:
            r = evaluate_checkpoint(ck, data, split, max_frames,
                                    confusion_snrs=tuple(confusion_snrs), normalize=normalize,
                                    device=device, snr_range=snrs)
        except (DatasetError, ValueError, OSError, KeyError) as e:
            fail_with(e, ck, (data,))
        r["label"] = Path(ck).stem
        results.append(r)
    written = []
    try:
        if plot_accuracy:
            from amchw.plots import accuracy_vs_snr

            written.append(accuracy_vs_snr(results, plot_accuracy))
        if plot_confusion:
            from amchw.plots import confusion_heatmap

            r = results[0]
            written.append(confusion_heatmap(
                r["confusion_int"], r["classes"], plot_confusion,
                f"{r['label']} integer, all SNRs ({r['frames']:,} frames)"))
            p = Path(plot_confusion)
            for snr, m in r["confusion_by_snr"].items():
                written.append(confusion_heatmap(
                    m["int"], r["classes"], p.with_name(f"{p.stem}.snr{snr}{p.suffix}"),
                    f"{r['label']} integer, SNR {snr} dB ({int(sum(map(sum, m['int']))):,} "
                    "frames)"))
    except (RuntimeError, OSError) as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return
    for r in results:
        scaled = "" if r["normalize"] == "none" else f", scaled {r['normalize']}"
        click.echo(f"{r['model']} ({r['label']}) on {data} ({r['split']}, {r['frames']:,} "
                   f"frames{scaled}): float {r['float_acc']:.4f}, integer {r['int_acc']:.4f}, "
                   f"float/integer agreement {r['agreement']:.4f}; trained {r['epochs']} "
                   f"epochs in {r['train_seconds']:.0f} s")
        click.echo(f"{'SNR dB':>7} {'float':>7} {'integer':>8}")
        for snr in sorted(r["float_by_snr"]):
            click.echo(f"{snr:>7} {r['float_by_snr'][snr]:>7.4f} {r['int_by_snr'][snr]:>8.4f}")
        if show_confusion:
            click.echo(format_confusion(r["confusion_int"], r["classes"], "all SNRs"))
            for snr, m in r["confusion_by_snr"].items():
                click.echo(format_confusion(m["int"], r["classes"], f"SNR {snr} dB"))
        if show_per_class:
            click.echo(format_per_class(r["per_class_int"], "all SNRs"))
            for snr, m in r["confusion_by_snr"].items():
                click.echo(format_per_class(m["per_class_int"], f"SNR {snr} dB"))
    for w in written:
        click.echo(f"wrote {w}")


def format_per_class(pc: dict, where: str) -> str:
    """amchw.evaluate.per_class's figures as a table."""
    w = max(9, max(len(c) for c in pc["classes"]))
    lines = [f"per class, integer model, {where}",
             f"{'class':>{w}} {'precision':>9} {'recall':>7} {'F1':>7} {'support':>8}"]
    for c, v in list(pc["classes"].items()) + [("macro avg", pc["macro"])]:
        lines.append(f"{c:>{w}} {v['precision']:>9.4f} {v['recall']:>7.4f} {v['f1']:>7.4f} "
                     f"{v['support']:>8}")
    lines.append(f"{'accuracy':>{w}} {pc['accuracy']:>33.4f}")
    return "\n".join(lines)


def format_confusion(m, classes, where: str) -> str:
    """An integer model's confusion matrix as text (rows true, columns predicted)."""
    w = max(5, max(len(c) for c in classes))
    lines = [f"confusion matrix, integer model, {where} (rows true, columns predicted)",
             " " * (w + 1) + " ".join(f"{i:>5}" for i in range(len(classes)))]
    for i, (c, row) in enumerate(zip(classes, m)):
        lines.append(f"{c:>{w}} " + " ".join(f"{v:>5}" for v in row) + f"   {i}")
    return "\n".join(lines)
