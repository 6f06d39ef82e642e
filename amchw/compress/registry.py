"""The compression methods' registry: one `Method` record per method holds everything about it,
and `amchw compress <method>` and the report's recipes (`kind = "<method>"`) are built from it.

A method is one module in amchw/compress/methods/ that calls `register(Method(...))` with

* its name (the subcommand and the recipe kind) and help (the command's text; its first
  sentence is the one-line description);
* its options (`Option`: default, help, type, command-line spelling, whether a recipe takes it):
  the command's click options and the recipe's keys and defaults are generated from them;
* its runner, `runner(inputs, out, opts, log)`: the checkpoints it starts from (`inputs`,
  e.g. {"start": path}) -> the checkpoint (or directory) `out`, returning a summary record;
  a composite (`stages`, e.g. KD then Net-Trim) chains other methods' runners instead;
* how its result is stored (`Storage`: the checkpoint key holding its record, and how the
  report derives the compressed graph the simulator costs);
* what the command prints (`summary`), and its part of the report (`Report`: its page
  sections, and where it is special: several checkpoints, a resumable run, extra measurements).

This module and the method modules load no torch (the command line reads them at start-up);
runners import the library inside."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

#: kinds of option: "str", "int", "float" (a range when min/max are given), "flag", "choice"
#: (choices), "floats" (a list; a comma-separated string on the command line), "names" (a list
#: of layer names, likewise), "ref" (an earlier checkpoint: a recipe's earlier experiment),
#: "model" (a zoo model name), "data" (a data file; in a recipe, a [data.NAME] entry)
OPTION_TYPES = ("str", "int", "float", "flag", "choice", "floats", "names", "ref", "model",
                "data")


@dataclass(frozen=True)
class Option:
    """One setting of a method: a command-line option (or argument) and/or a recipe key."""
    name: str                        # the recipe key and the runner's opts key
    default: Any = None              # None: none (the runner's choice, e.g. the start's)
    help: str | None = None
    type: str = "str"
    min: float | None = None         # the range of an int or float
    max: float | None = None
    min_open: bool = False
    choices: tuple = ()
    flags: tuple[str, ...] = ()      # command-line spelling (default: --name-with-dashes)
    required: bool = False
    argument: str | None = None      # a positional argument with this metavar
    cli: bool = True                 # an option of `amchw compress <method>`
    recipe: bool = True              # a key of the method's recipe entries
    hint: str | None = None          # a required recipe key's "needs NAME = HINT"

    def __post_init__(self):
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name}: unknown type {self.type!r}")

    @property
    def flag(self) -> str:
        """The command-line name errors cite (its first long flag)."""
        longs = [f for f in self.flags if f.startswith("--")]
        return longs[0] if longs else "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Storage:
    """How a method's result is stored: `key`, the checkpoint key holding its record, and
    `compressed(graph, info, sparse_format, min_sparsity)`, the lowered graph with the
    compressed storage the report simulates (None: the method leaves the storage dense)."""
    key: str
    compressed: Callable | None = None


def pq_storage(graph, info: dict, sparse_format: str, min_sparsity: float):
    """Product quantization: its layer stored pqP:K (P subspaces, K centroids)."""
    from amchw.ir.sparse import set_format

    names = [n.name for n in graph.nodes if n.source == info["layer"]]
    return set_format(graph, f"pq{info['subspaces']}:{info['centroids']}", 0.0, layers=names)[0]


def sparse_storage(graph, info: dict, sparse_format: str, min_sparsity: float):
    """Pruning: the report's sparse format on every layer at least min_sparsity zero."""
    from amchw.ir.sparse import set_format

    return set_format(graph, sparse_format, min_sparsity)[0]


@dataclass(frozen=True)
class Section:
    """A part of the report page: `render(ctx, checkpoints)` with the method's checkpoints
    (called only when there are some; ctx is amchw.report.page.PageContext); `order` places it
    among the page's sections (amchw.report.page.ORDER)."""
    order: int
    render: Callable


@dataclass(frozen=True)
class SeedRow:
    """A method's row in the edge-efficient seed's Table IV (individual and combined methods):
    its code there, its code when it starts from a distilled student (DP, DQ), and whether the
    row shows the checkpoint's p_e and C_Q."""
    code: str
    distilled: str | None = None
    p_e: bool = False
    c_q: bool = False


def _one_checkpoint(method: Method, out: str, result, opts: dict, label: str, start: str):
    from amchw.checkpoint import load

    return [("", out, dict(load(out).get(method.storage.key) or {}))]


@dataclass(frozen=True)
class Report:
    """A method in report recipes.

    sections: its parts of the page. reruns: the report runs it again over an existing
    output (a trainer that resumes, or returns the finished run) instead of reusing it.
    stages: it writes a directory of stage checkpoints (OUT/checkpoints/NAME/), not NAME.pt.
    checkpoints(method, out, result, opts, label, start): the checkpoints the report measures,
    as (label suffix, path, info) with the experiment's own last (default: `out` with its
    stored record; result is None when the run was reused). measure(ck, graph, frames, opts,
    targets): extra measurements of each checkpoint (frames: x, y, snr, which).
    seed_row: its row in the edge-efficient seed's Table IV."""
    sections: tuple[Section, ...] = ()
    reruns: bool = False
    stages: bool = False
    checkpoints: Callable = _one_checkpoint
    measure: Callable | None = None
    seed_row: SeedRow | None = None


def stage_path(out: str, tag: str) -> str:
    """Where a composite keeps an intermediate checkpoint: <stem>.<tag>.pt beside `out`."""
    p = Path(out)
    return str(p.with_name(f"{p.stem}.{tag}{p.suffix or '.pt'}"))


@dataclass(frozen=True)
class Method:
    """A compression method (see the module's docstring)."""
    name: str
    help: str
    options: tuple[Option, ...]
    storage: Storage
    runner: Callable | None = None       # (inputs, out, opts, log) -> result
    summary: Callable | None = None      # (result, opts, out) -> the lines the command prints
    figures: Callable | None = None      # (result) -> its figures alone (a composite's last)
    stages: tuple[str, ...] = ()         # a composite: these methods in turn
    output_help: str = "The checkpoint to write."
    report: Report | None = None         # None: not a recipe kind
    usage_errors: bool = False           # its PruneError is a usage error (exit 2)
    check: Callable | None = None        # (opts) -> None; raises resolve.RequestError
    check_recipe: Callable | None = None  # (entry, earlier entries by name) -> message or None

    def __post_init__(self):
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"method {self.name}: an option named twice")
        if (self.runner is None) == (not self.stages):
            raise ValueError(f"method {self.name}: give a runner or stages, not both")

    @property
    def description(self) -> str:
        """The one-line description: the help's first clause."""
        return self.help.split(": ")[0].split(". ")[0].rstrip(".")

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)

    @property
    def refs(self) -> tuple[str, ...]:
        """Its references to earlier checkpoints (start, teacher, benchmark)."""
        return tuple(o.name for o in self.options if o.type == "ref")

    @property
    def inputs(self) -> tuple[str, ...]:
        """The references its runner reads (the required ones)."""
        return tuple(o.name for o in self.options if o.type == "ref" and o.required)

    @property
    def recipe_keys(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options if o.recipe)

    def defaults(self) -> dict:
        """Every setting (not the references) at its default."""
        return {o.name: o.default for o in self.options if o.type != "ref"}

    def settings(self, given: dict) -> dict:
        """The defaults with the settings in `given` (a recipe entry, another method's
        settings) that this method has."""
        d = self.defaults()
        d.update({k: v for k, v in given.items() if k in d})
        return d

    def run(self, inputs: dict, out: str, opts: dict, log=print, echo=None):
        """Run on the checkpoints `inputs` ({ref: path}) with `opts` (settings), writing
        `out`; a composite echoes each earlier stage's summary (echo(lines))."""
        if not self.stages:
            return self.runner(inputs, out, opts, log)
        path, result = None, None
        for k, name in enumerate(self.stages):
            m = METHODS[name]
            last = k == len(self.stages) - 1
            o = m.settings(opts)
            ins = {r: inputs[r] for r in m.inputs} if path is None else {m.inputs[0]: path}
            step = out if last else stage_path(out, m.name)
            result = m.run(ins, step, o, log, echo)
            if not last and echo is not None:
                echo(m.summary(result, o, step))
            path = step
        return result

    def lines(self, result, opts: dict, out: str) -> list[str]:
        """What `amchw compress <method>` prints after the run."""
        if self.summary is not None:
            return self.summary(result, opts, out)
        return METHODS[self.stages[-1]].figures(result) + [f"wrote {out}"]


#: the registered methods by name, in registration order (amchw.compress.methods imports
#: every method module, which fills it)
METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add `method` to METHODS (a name registered twice is an error)."""
    if method.name in METHODS:
        raise ValueError(f"compression method {method.name!r} registered twice")
    METHODS[method.name] = method
    return method


# ---------------------------------------------------------------- options several methods share

#: the quantization of a zoo model a method builds, and --seed; also `amchw train`'s and
#: `amchw prune`'s (amchw.cli.common.quant_options). Not recipe keys: a recipe's compression
#: runs start from its trained checkpoints.
QUANT_OPTIONS = (
    Option("scales", "po2", "Scale kind for zoo models.", "choice", choices=("po2", "float"),
           recipe=False),
    Option("weight_bits", 8, "Weight width of a zoo model (signed, narrow range).", type="int",
           min=2, max=8, recipe=False),
    Option("act_bits", 8, "Activation width of a zoo model (unsigned after each ReLU).",
           type="int", min=2, max=8, recipe=False),
    Option("seed", 0, "Seed of a zoo model's weights and calibration frames.", type="int",
           recipe=False),
)

_TRAIN = (
    Option("data", None, "RadioML-layout HDF5 file (default: the one the start checkpoint was "
                         "trained on).", "data", recipe=False),
    Option("epochs", None, "Training epochs (default: the start checkpoint's; for imp, per "
                           "stage, --prune-epochs + 15).", "int", min=1),
    Option("batch_size", None, "(default: the start checkpoint's; imp: 128, the seed's)", "int",
           min=2),
    Option("lr", None, "(default: the start checkpoint's; imp: 1e-4, the seed's)", "float"),
    Option("patience", None, "Early stopping: epochs without a better validation loss (imp: "
                             "12, the seed's).", "int", min=1),
    Option("max_train", None, "Use at most this many training frames.", "int", min=2),
    Option("best_by", None, "Keep the epoch of lowest validation loss or of highest "
                            "validation accuracy (the distillation slides'; default: loss).",
           "choice", choices=("loss", "accuracy")),
)
TRAINING = ("epochs", "batch_size", "lr", "patience", "max_train", "best_by")


def train_options(recipe=TRAINING) -> tuple[Option, ...]:
    """--data (the start checkpoint's by default; never a recipe key: a recipe's runs read
    their start's data) and the training settings, those in `recipe` also recipe keys."""
    return tuple(o if o.name == "data" else replace(o, recipe=o.name in recipe) for o in _TRAIN)


def training(opts: dict) -> dict:
    """The training settings given (not None) in `opts`, as TrainConfig overrides."""
    return {k: opts[k] for k in TRAINING if opts.get(k) is not None}
