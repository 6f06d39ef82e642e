"""What the command modules share: `fail` (exit 1), the command and group classes that end the
library's RequestError as a command line ends errors, and the quantization options of zoo
models. Imports click only (amchw --help stays fast)."""

from __future__ import annotations

import sys
from functools import partial

import click

from amchw.resolve import RequestError


def fail(msg: str) -> None:
    """`error: msg` on stderr, exit 1."""
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


class Command(click.Command):
    """A command whose amchw.resolve.RequestError ends as a usage error (exit 2, naming its
    option) when it is one, else as `error: ...` (exit 1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RequestError as e:
            if not e.usage:
                fail(str(e))
            if e.option:
                raise click.BadParameter(str(e), ctx=ctx, param_hint=e.option) from None
            raise click.UsageError(str(e), ctx=ctx) from None


class Group(click.Group):
    """A group whose commands and subgroups are Command and Group."""

    command_class = Command
    group_class = type


command = partial(click.command, cls=Command)
group = partial(click.group, cls=Group)

_QUANT_OPTS = [
    click.option("--scales", type=click.Choice(["po2", "float"]), default="po2",
                 show_default=True, help="Scale kind for zoo models."),
    click.option("--weight-bits", type=int, default=8, show_default=True),
    click.option("--act-bits", type=int, default=8, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
]


def quant_options(f):
    """--scales, --weight-bits, --act-bits (for zoo models) and --seed."""
    for opt in reversed(_QUANT_OPTS):
        f = opt(f)
    return f


def log(msg: str) -> None:
    """A progress line on stderr."""
    click.echo(msg, err=True)
