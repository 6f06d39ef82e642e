"""`amchw compress METHOD ...`: the seeds' compression methods, each writing a checkpoint that
lowers, verifies and simulates (amchw.compress.pipeline); and `amchw prune`, magnitude pruning
without training."""

from __future__ import annotations

from pathlib import Path

import click

from amchw.compress.defaults import (IMP_FREQUENCY, IMP_INITIAL_SPARSITY, IMP_POWER,
                                     IMP_PRUNE_EPOCHS, IMP_SCHEDULE, NET_TRIM_EPSILON,
                                     NET_TRIM_FRAMES)

from .common import command, fail, group, log, quant_options


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}",
                                 param_hint=option) from None


_TRAIN_OPTS = [
    click.option("--data", default=None,
                 help="RadioML-layout HDF5 file (default: the one the start checkpoint was "
                      "trained on)."),
    click.option("--epochs", type=click.IntRange(1), default=None,
                 help="Training epochs (default: the start checkpoint's; for imp, per stage, "
                      "--prune-epochs + 15)."),
    click.option("--batch-size", type=click.IntRange(2), default=None,
                 help="(default: the start checkpoint's; imp: 128, the seed's)"),
    click.option("--lr", type=float, default=None,
                 help="(default: the start checkpoint's; imp: 1e-4, the seed's)"),
    click.option("--patience", type=click.IntRange(1), default=None,
                 help="Early stopping: epochs without a better validation loss (imp: 12, "
                      "the seed's)."),
    click.option("--max-train", type=click.IntRange(2), default=None,
                 help="Use at most this many training frames."),
]


def _train_options(f):
    for opt in reversed(_TRAIN_OPTS):
        f = opt(f)
    return f


def _train_kw(epochs, batch_size, lr, patience, max_train) -> dict:
    return {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr,
                                   patience=patience, max_train=max_train).items()
            if v is not None}


def _run(fn, *a, **kw):
    """Call a compression run; its user errors end the command with their message."""
    from amchw.compress.prune import PruneError
    from amchw.data.radioml import DatasetError

    try:
        return fn(*a, **kw)
    except (PruneError, DatasetError, ValueError, OSError) as e:
        fail(str(e))


def _kd_options(f):
    opts = [
        click.option("--teacher", required=True, help="The trained teacher checkpoint."),
        click.option("--student", required=True, help="The zoo model to distil into."),
        click.option("--temperature", "-T", type=click.FloatRange(min=0, min_open=True),
                     default=10.0, show_default=True, help="Softmax temperature T."),
        click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
                     help="The weight alpha (on the distillation term in the edge convention, "
                          "on the cross-entropy in the hinton convention)."),
        click.option("--convention", type=click.Choice(["edge", "hinton"]), default="edge",
                     show_default=True,
                     help="edge: L = a KL + (1-a) CE(soft student) (edge-efficient seed, "
                          "Algorithm 3); hinton: L = a CE + (1-a) T^2 KL (the slides)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _pq_options(f):
    """PQ's P and K_s."""
    f = click.option("--centroids", "K", type=click.IntRange(2), default=256, show_default=True,
                     help="K_s: centroids per subspace (a power of two).")(f)
    return click.option("--subspaces", "P", type=click.IntRange(1), required=True,
                        help="P: the outputs split into P subspaces.")(f)


def _print_net_trim(info: dict) -> None:
    click.echo(f"Net-Trim {info['layer']} (epsilon {info['epsilon']:g}, {info['frames']} "
               f"frames, {info['iterations']} ADMM iterations"
               f"{'' if info['converged'] else ', not converged'})")
    click.echo(f"  n_T {info['n_T']:,}  n_b {info['n_b']:,}  n_a {info['n_a']:,}  "
               f"p_e {100 * info['p_e']:.2f}%  output discrepancy "
               f"{info['discrepancy']:.4f} (<= epsilon)")


def _print_pq(info: dict) -> None:
    cq = ", ".join(f"{v:.2f} ({k[4:]})" for k, v in info.items() if k.startswith("C_Q"))
    click.echo(f"PQ {info['layer']}: {info['inputs']} x {info['outputs']}, P={info['subspaces']} "
               f"K_s={info['centroids']}: C_Q {cq}")


@command("prune")
@click.argument("model_spec", metavar="MODEL")
@click.option("--sparsity", type=float, default=None,
              help="Fraction of each layer's weights to zero (unstructured).")
@click.option("--pattern", default="unstructured", show_default=True,
              help="unstructured, or N:M (keep the N largest of every M consecutive weights).")
@click.option("--layers", default=None,
              help="Comma-separated layer paths to prune (default: every Conv/Linear).")
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
@quant_options
def prune_cmd(model_spec, sparsity, pattern, layers, output, scales, weight_bits, act_bits, seed):
    """Magnitude-prune MODEL (zoo name or checkpoint) and write a checkpoint that lowers,
    verifies and simulates. A zoo model is pruned, then calibrated on synthetic frames; a
    checkpoint keeps its trained scales."""
    from amchw.compress.pipeline import prune
    from amchw.compress.prune import PruneError

    names = [v.strip() for v in layers.split(",")] if layers else None
    try:
        info = prune(model_spec, output, sparsity, pattern, names,
                     dict(scales=scales, weight_bits=weight_bits, act_bits=act_bits), seed)
    except PruneError as e:
        raise click.BadParameter(str(e)) from None
    except OSError as e:
        fail(f"{output}: {e}")
    done = info["layers"]
    w = max(len(n) for n in done) if done else 5
    for n, sp in done.items():
        click.echo(f"{n:<{w}}  {sp:7.2%} zero")
    click.echo(f"wrote {output}: {info['model']}, {pattern} pruning of {len(done)} layers")


@group("compress")
def compress_group() -> None:
    """The seeds' compression methods, each writing a checkpoint that verifies and simulates:
    net-trim, imp, pq, kd, dp, dq, early-exit."""


@compress_group.command("net-trim")
@click.argument("start", metavar="CHECKPOINT")
@click.option("--layer", default=None, help="The FC layer (default: the first).")
@click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=NET_TRIM_EPSILON,
              show_default=True,
              help="Relative bound on the layer's ReLU output change, ||Y^ - Y||_F <= "
                   "epsilon ||Y||_F.")
@click.option("--frames", type=click.IntRange(2), default=NET_TRIM_FRAMES, show_default=True,
              help="Training frames whose activations form X.")
@click.option("--data", default=None, help="Data file (default: the checkpoint's).")
@click.option("--rho", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="ADMM penalty.")
@click.option("--max-iter", type=click.IntRange(1), default=None, help="ADMM iterations cap.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
def net_trim_cmd(start, layer, epsilon, frames, data, rho, max_iter, seed, output):
    """Net-Trim (edge-efficient seed, Algorithm 1): the L1-minimal weights of one FC layer
    whose ReLU outputs on training frames stay within epsilon of the original (ADMM)."""
    from amchw.compress.pipeline import net_trim

    admm = {"rho": rho} | ({"max_iter": max_iter} if max_iter else {})
    info = _run(net_trim, start, output, layer, epsilon, frames, data, seed, **admm)
    _print_net_trim(info)
    click.echo(f"wrote {output}")


@compress_group.command("imp")
@click.argument("start", metavar="CHECKPOINT")
@click.option("--schedule", default=",".join(f"{t:g}" for t in IMP_SCHEDULE), show_default=True,
              help="Target sparsities of the successive stages.")
@click.option("--prune-epochs", type=click.IntRange(1), default=IMP_PRUNE_EPOCHS,
              show_default=True,
              help="Epochs of each stage over which the sparsity rises to its target.")
@click.option("--initial-sparsity", type=click.FloatRange(0, 1), default=IMP_INITIAL_SPARSITY,
              show_default=True, help="Where the first stage's schedule starts.")
@click.option("--frequency", type=click.IntRange(1), default=IMP_FREQUENCY, show_default=True,
              help="Optimizer steps between pruning steps.")
@click.option("--power", type=float, default=IMP_POWER, show_default=True,
              help="Exponent of the polynomial schedule.")
@click.option("--layers", default=None, help="Comma-separated layers (default: every "
                                             "Conv/Linear/GRU weight).")
@_train_options
@click.option("-o", "--output", "out_dir", required=True,
              help="Directory for the stage checkpoints.")
def imp_cmd(start, schedule, prune_epochs, initial_sparsity, frequency, power, layers, data,
            epochs, batch_size, lr, patience, max_train, out_dir):
    """Iterative magnitude pruning with QAT (GRU-CNN seed): each stage prunes the previous
    stage's model to its target over --prune-epochs and retrains it (early stopping); prints
    the seed's Table 3 (parameters, sparsity, memory footprint at the weight bit width)."""
    from amchw.compress.pipeline import imp

    targets = _floats(schedule, "--schedule")
    names = [v.strip() for v in layers.split(",")] if layers else None
    res = _run(imp, start, targets, out_dir, prune_epochs, initial_sparsity, frequency, power,
               names, data, log=log, **_train_kw(epochs, batch_size, lr, patience, max_train))
    click.echo(f"{'stage':<6} {'target':>7} {'sparsity':>9} {'parameters':>11} "
               f"{'footprint kB':>13}  checkpoint")
    for k, r in enumerate(res, 1):
        click.echo(f"{k:<6} {r.target:>7.2f} {r.sparsity:>9.4f} {r.parameters:>11,} "
                   f"{r.footprint_bytes / 1000:>13.1f}  {r.checkpoint}")


@compress_group.command("pq")
@click.argument("start", metavar="MODEL")
@click.option("--layer", default=None, help="The FC layer, a QuantLinear (default: the first).")
@_pq_options
@click.option("--retrain-epochs", type=click.IntRange(0), default=0, show_default=True,
              help="Retrain the rest of the network with the PQ layer frozen (seed: 20).")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.1,
              show_default=True, help="Fraction of the training frames for retraining.")
@quant_options
@_train_options
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
def pq_cmd(start, layer, P, K, retrain_epochs, train_fraction, scales, weight_bits, act_bits,
           seed, data, epochs, batch_size, lr, patience, max_train, output):
    """Product quantization (edge-efficient seed, Algorithm 2) of one FC layer of MODEL, a
    checkpoint or a zoo name (random weights calibrated on synthetic frames; --scales,
    --weight-bits, --act-bits), with k-means per subspace, optionally with the seed's
    retraining; prints C_Q. The checkpoint written stores the layer pqP:K in the IR."""
    from amchw.compress.pipeline import product_quantization
    from amchw.compress.prune import PruneError
    from amchw.data.radioml import DatasetError

    if epochs is not None:
        raise click.UsageError("give --retrain-epochs, not --epochs")
    try:
        info = product_quantization(
            start, output, layer, P, K, retrain_epochs, train_fraction, data, seed, log=log,
            quant=dict(scales=scales, weight_bits=weight_bits, act_bits=act_bits),
            **_train_kw(None, batch_size, lr, patience, max_train))
    except PruneError as e:   # the layer, P or K_s does not fit the model
        raise click.BadParameter(str(e), param_hint=e.option) from None
    except (DatasetError, ValueError, OSError) as e:
        fail(str(e))
    _print_pq(info)
    if retrain_epochs:
        click.echo(f"without retraining: {info['no_retrain']}")
    click.echo(f"wrote {output}: {info['layer']} stored pq{P}:{K}")


def _distil(teacher, student, output, data, temperature, alpha, convention, train_kw):
    from amchw.compress.pipeline import distill

    info = _run(distill, teacher, student, output, data, temperature, alpha, convention,
                log=log, **train_kw)
    click.echo(f"KD: {info['student']} <- {info['teacher_model']} (T={temperature:g}, "
               f"alpha={alpha:g}, {convention}), {info['epochs']} epochs: {output}")
    return info


@compress_group.command("kd")
@_kd_options
@_train_options
@click.option("-o", "--output", required=True, help="The student checkpoint to write.")
def kd_cmd(teacher, student, temperature, alpha, convention, data, epochs, batch_size, lr,
           patience, max_train, output):
    """Knowledge distillation: a zoo student trained against a trained teacher."""
    _distil(teacher, student, output, data, temperature, alpha, convention,
            _train_kw(epochs, batch_size, lr, patience, max_train))


def _stage_path(output: str, tag: str) -> str:
    p = Path(output)
    return str(p.with_name(f"{p.stem}.{tag}{p.suffix or '.pt'}"))


@compress_group.command("dp")
@_kd_options
@click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=NET_TRIM_EPSILON,
              show_default=True, help="Net-Trim's relative epsilon.")
@click.option("--frames", type=click.IntRange(2), default=NET_TRIM_FRAMES, show_default=True,
              help="Net-Trim's training frames.")
@click.option("--layer", default=None, help="The FC layer to prune (default: the first).")
@_train_options
@click.option("-o", "--output", required=True, help="The checkpoint to write (the distilled "
                                                    "student is kept as <stem>.kd.pt).")
def dp_cmd(teacher, student, temperature, alpha, convention, epsilon, frames, layer, data,
           epochs, batch_size, lr, patience, max_train, output):
    """Distilled pruning (edge-efficient seed): KD, then Net-Trim of the student's FC layer."""
    from amchw.compress.pipeline import net_trim

    kd = _stage_path(output, "kd")
    _distil(teacher, student, kd, data, temperature, alpha, convention,
            _train_kw(epochs, batch_size, lr, patience, max_train))
    info = _run(net_trim, kd, output, layer, epsilon, frames, data)
    _print_net_trim(info)
    click.echo(f"wrote {output}")


@compress_group.command("dq")
@_kd_options
@click.option("--subspaces", "P", type=click.IntRange(1), required=True, help="PQ's P.")
@click.option("--centroids", "K", type=click.IntRange(2), default=256, show_default=True,
              help="PQ's K_s.")
@click.option("--layer", default=None, help="The FC layer to quantize (default: the first).")
@_train_options
@click.option("-o", "--output", required=True, help="The checkpoint to write (the distilled "
                                                    "student is kept as <stem>.kd.pt).")
def dq_cmd(teacher, student, temperature, alpha, convention, P, K, layer, data, epochs,
           batch_size, lr, patience, max_train, output):
    """Distilled quantization (edge-efficient seed): KD, then PQ of the student's FC layer."""
    from amchw.compress.pipeline import product_quantization

    kd = _stage_path(output, "kd")
    _distil(teacher, student, kd, data, temperature, alpha, convention,
            _train_kw(epochs, batch_size, lr, patience, max_train))
    info = _run(product_quantization, kd, output, layer, P, K, 0, data=data)
    _print_pq(info)
    click.echo(f"wrote {output}")


@compress_group.command("early-exit")
@click.option("--model", "model_name", required=True,
              type=click.Choice(["ee-v0", "ee-v1", "ee-v2", "ee-v3"]),
              help="The exit placement.")
@click.option("--data", required=True, help="RadioML-layout HDF5 file (10 classes, 2 x 128).")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(2), default=256, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--patience", type=click.IntRange(1), default=3, show_default=True)
@click.option("--max-train", type=click.IntRange(2), default=None)
@click.option("--joint", is_flag=True,
              help="Sum both losses into every parameter instead of the seed's multi-branch "
                   "rule.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", required=True, help="The checkpoint to write.")
def early_exit_cmd(model_name, data, epochs, batch_size, lr, patience, max_train, joint, seed,
                   output):
    """Train an early-exit network with the early-exit seed's multi-branch rule: the exit loss
    updates the trunk and the exit branch, the final loss only the long branch."""
    from amchw.compress.pipeline import early_exit

    info = _run(early_exit, model_name, data, output, epochs, batch_size, lr, patience,
                max_train, joint, seed, log=log)
    click.echo(f"wrote {output}: {model_name}, {info['epochs']} epochs, "
               f"{info['method']['objective']['name']}")
