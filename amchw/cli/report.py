"""`amchw report RECIPE`: a TOML recipe's experiments run and compared on one page."""

from __future__ import annotations

from pathlib import Path

import click

from .common import command, fail, log


@command("report")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True,
              help="Directory for report.md, report.html, report.json, the plots, the data "
                   "and the checkpoints (re-running reuses what is there).")
def report_cmd(recipe, out_dir):
    """Run the experiments of a TOML RECIPE (training, compression, early exits) and write a
    page comparing accuracy, the seeds' tables and cycles/energy on hardware targets."""
    from amchw.report import RecipeError, run_report

    try:
        data = run_report(recipe, out_dir, log=log)
    except RecipeError as e:
        raise click.BadParameter(str(e), param_hint="RECIPE") from None
    except (ValueError, OSError) as e:
        fail(str(e))
    click.echo(f"wrote {Path(out_dir) / 'report.md'} and report.html "
               f"({len(data['checkpoints'])} checkpoints, {data['seconds'] / 60:.1f} min)")
