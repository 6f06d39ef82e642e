"""The `amchw` command line: thin commands that parse options, call the library and print,
one module per command group. Heavy imports (torch, brevitas, numba) happen inside the
commands, so `amchw --help` starts fast.
Exit codes: 0 ok, 1 a failed check or runtime error, 2 usage."""

from __future__ import annotations

import click

from .common import Group, fail
from .compress import compress_group, prune_cmd
from .data import PROFILE_NAMES, data_group
from .export import cost_cmd, export_cmd
from .info import cache_group, targets_cmd, zoo_cmd
from .report import report_cmd
from .simulate import simulate_cmd
from .sweep import sweep_cmd
from .train import eval_cmd, train_cmd
from .verify import verify_cmd

__all__ = ["PROFILE_NAMES", "fail", "main"]


@click.group(cls=Group)
@click.version_option(package_name="amchw")
def main() -> None:
    """amchw: quantized AMC networks lowered to an integer IR, verified bit-exact, costed on
    hardware."""
    _exit_on_sigterm()


def _exit_on_sigterm() -> None:
    """SIGTERM ends a command as an exit (status 143), as Ctrl-C does, so the clean-up of
    partial outputs runs (amchw.fileio removes its temporary files)."""
    import signal

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:   # not the main thread (an embedding application): leave it
        pass


for _cmd in (zoo_cmd, targets_cmd, verify_cmd, simulate_cmd, prune_cmd, export_cmd, cost_cmd,
             data_group, train_cmd, eval_cmd, compress_group, report_cmd, sweep_cmd,
             cache_group):
    main.add_command(_cmd)
