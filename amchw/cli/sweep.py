"""`amchw sweep SPEC.toml -o DIR`: a declared grid of models, weight formats, targets and
their overrides, dataflows, timing modes and batch sizes simulated on Dask (docs/sweep.md)."""

from __future__ import annotations

import json

import click

from .common import command, fail, log


@command("sweep")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True,
              help="Folder for points.parquet, points.csv, summary.json and pareto.png (and "
                   "the parts a killed sweep resumes from).")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); default: "
                   "a local cluster of worker processes on this machine.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes of the local cluster  [default: the CPU count]")
@click.option("--restart", is_flag=True,
              help="Discard the points already in the folder instead of resuming.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (fronts and best "
              "points) as JSON.")
def sweep_cmd(spec_path, out_dir, scheduler, workers, restart, as_json):
    """Simulate every design point of the SPEC's grid on Dask: one row per point (cycles,
    latency, inferences/s, energy by action class, utilisation, bytes, accuracy where the
    spec gives data), written incrementally so a killed sweep resumes; then the Pareto fronts
    and the best point of each [[best]] question."""
    from amchw.sweep import SpecError, SweepError, load_spec, run_sweep

    if scheduler and workers:
        raise click.UsageError("--workers sizes the local cluster; it does not combine with "
                               "--scheduler")
    try:
        spec = load_spec(spec_path)
    except SpecError as e:
        raise click.BadParameter(str(e), param_hint="SPEC") from None
    try:
        summary = run_sweep(spec, out_dir, scheduler, workers, restart,
                            log=(lambda m: None) if as_json else log)
    except (SweepError, ValueError, OSError) as e:
        fail(str(e))
    if as_json:
        click.echo(json.dumps(summary, indent=1, default=str))
    else:
        click.echo(f"wrote {out_dir}/points.parquet, points.csv, summary.json and pareto.png "
                   f"({summary['points']:,} points, {summary['errors']} with errors)")
