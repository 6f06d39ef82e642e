"""What the command modules share: `fail` (exit 1), the command and group classes that end the
library's RequestError as a command line ends errors, click parameters made from the
compression registry's options, and the quantization options of zoo models (the registry's
QUANT_OPTIONS). Imports click and torch-free modules only (amchw --help stays fast)."""

from __future__ import annotations

import sys
from functools import partial

import click

from amchw.compress.registry import QUANT_OPTIONS, Option
from amchw.resolve import RequestError


def fail(msg: str) -> None:
    """`error: msg` on stderr, exit 1."""
    click.echo(f"error: {msg}", err=True)
    sys.exit(1)


def fail_with(e: Exception, name: str | None = None, others=()) -> None:
    """End a command on a library error: a file that is not there or is a directory
    (amchw.fileio.MissingFile: a data file, a checkpoint) is a usage error (exit 2), anything
    else `error: ...` (exit 1). `name` (the file or model the error is about) prefixes the
    message unless it already starts with it or with one of `others` (other files the
    command read, which name themselves)."""
    from amchw.fileio import MissingFile

    msg = str(e)
    if name is not None and not any(msg.startswith(str(n)) for n in (name, *others) if n):
        msg = f"{name}: {msg}"
    if isinstance(e, MissingFile):
        raise click.UsageError(msg)
    fail(msg)


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

def click_type(o: Option):
    """The click type of an option (None: text)."""
    if o.choices:
        return click.Choice(list(o.choices))
    if o.type in ("int", "float"):
        if o.min is None and o.max is None:
            return int if o.type == "int" else float
        kind = click.IntRange if o.type == "int" else click.FloatRange
        return kind(o.min, o.max, min_open=o.min_open)
    return None


def _spec(o: Option) -> tuple[list[str], dict]:
    if o.argument:
        return [o.name], {"metavar": o.argument}
    decls = [o.name, *(o.flags or (o.flag,))]
    if o.type == "flag":
        return decls, {"is_flag": True, "help": o.help}
    default = o.default
    if o.type == "floats" and default is not None:   # a list, as comma-separated text
        default = ",".join(f"{v:g}" for v in default)
    kw = {"type": click_type(o), "required": o.required,
          "show_default": True if default is not None else None, "help": o.help}
    if default is not None or not o.required:
        kw["default"] = default
    return decls, kw


def click_param(o: Option) -> click.Parameter:
    """The command-line argument (o.argument) or option of a registry option."""
    decls, kw = _spec(o)
    return (click.Argument if o.argument else click.Option)(decls, **kw)


def quant_options(f):
    """--scales, --weight-bits, --act-bits (for zoo models) and --seed."""
    for o in reversed(QUANT_OPTIONS):
        decls, kw = _spec(o)
        f = click.option(*decls, **kw)(f)
    return f


def log(msg: str) -> None:
    """A progress line on stderr."""
    click.echo(msg, err=True)


class _NoBar:
    """A progress bar that shows nothing (stderr is not a terminal: a log file gets the
    command's own lines, not a bar's label on a line of its own)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def progress_bar(length: int, label: str):
    """click's progress bar on stderr when it is a terminal, else one that shows nothing."""
    import sys

    if not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=length, label=label, file=sys.stderr)
