"""`amchw compress METHOD ...`: the seeds' compression methods, each writing a checkpoint that
lowers, verifies and simulates; and `amchw prune`, magnitude pruning without training.

The subcommands are generated from the methods' registry (amchw.compress.registry; one module
per method in amchw.compress.methods): their options, defaults and help, the run, and what they
print all come from the method's entry."""

from __future__ import annotations

import click

from amchw.compress.methods import METHODS
from amchw.compress.registry import Method, Option

from .common import (Command, click_param, command, fail, fail_with, group, log,
                     quant_options)


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}",
                                 param_hint=option) from None


@command("prune")
@click.argument("model_spec", metavar="MODEL")
@click.option("--sparsity", type=click.FloatRange(0, 1), default=None,
              help="Fraction of each layer's weights to zero (needed by unstructured pruning).")
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
    if pattern == "unstructured" and sparsity is None:
        raise click.UsageError("unstructured pruning needs --sparsity (the fraction of each "
                               "layer's weights to zero, e.g. 0.9); or give --pattern N:M")
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
    for n, why in info.get("kept_dense", {}).items():
        click.echo(f"{n}: kept dense ({why})")
    click.echo(f"wrote {output}: {info['model']}, {pattern} pruning of {len(done)} layers")


@group("compress")
def compress_group() -> None:
    """The seeds' compression methods, each writing a checkpoint that verifies and simulates:
    net-trim, imp, pq, kd, dp, dq, early-exit, ptq."""


def _value(o: Option, v):
    """A command-line value as the runner takes it (lists from comma-separated text)."""
    if o.type == "floats" and v is not None:
        return _floats(v, o.flag)
    if o.type == "names":
        return [t.strip() for t in v.split(",")] if v else None
    return v


def method_command(m: Method) -> click.Command:
    """`amchw compress <m.name>`."""
    opts = [o for o in m.options if o.cli]

    def callback(output, device, **kw):
        from amchw.compress.errors import PruneError
        from amchw.data.radioml import DatasetError

        inputs = {o.name: kw[o.name] for o in opts if o.type == "ref"}
        settings = m.settings({o.name: _value(o, kw[o.name]) for o in opts if o.type != "ref"})
        if m.check is not None:
            m.check(settings)
        from amchw.train import DEVICE, tune_allocator

        tune_allocator()
        token = DEVICE.set(device)
        try:
            result = m.run(inputs, output, settings, log=log, echo=_echo)
        except PruneError as e:
            if m.usage_errors:   # the layer, P or K_s does not fit the model
                raise click.BadParameter(str(e), param_hint=e.option) from None
            fail(str(e))
        except (DatasetError, ValueError, OSError) as e:
            fail_with(e)
        finally:
            DEVICE.reset(token)
        _echo(m.lines(result, settings, output))

    params = [click_param(o) for o in opts]
    params.append(click.Option(["output", "-o", "--output"], required=True, help=m.output_help))
    params.append(click.Option(["--device"], type=click.Choice(["auto", "cpu", "cuda"]),
                               default="auto", show_default=True,
                               help="Where torch trains (auto: cuda when torch sees a GPU, "
                                    "else cpu); the integer side runs on the CPU."))
    return Command(m.name, params=params, callback=callback, help=m.help)


def _echo(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


for _m in METHODS.values():
    compress_group.add_command(method_command(_m))
