"""The compression-method registry (amchw.compress.registry): every method has a runner, options
with their defaults, a storage key and (as a recipe kind) a report section; `amchw compress`
and the report's recipes are exactly the registered methods, with the registry's options and
defaults; the library's defaults are the registry's. No training: torch only for signatures."""

import inspect
import re
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from amchw.cli import main
from amchw.cli.compress import compress_group
from amchw.compress.methods import METHODS
from amchw.compress.registry import (OPTION_TYPES, QUANT_OPTIONS, Method, Option, Storage,
                                     register, stage_path)

#: what the checkpoints record a method's result under (docs/compression.md)
STORAGE_KEYS = {"net_trim", "pq", "method", "pruning", "ptq"}


def test_every_method_has_a_runner_options_storage_and_section():
    assert METHODS, "no method registered"
    for name, m in METHODS.items():
        assert isinstance(m, Method) and m.name == name
        assert m.help and m.description and "\n" not in m.description
        if m.stages:   # a composite: registered methods in turn, the first feeding the next
            assert len(m.stages) >= 2 and all(s in METHODS for s in m.stages), name
            assert all(METHODS[s].runner is not None for s in m.stages), name
            assert METHODS[m.stages[-1]].figures is not None, name
            assert m.storage == METHODS[m.stages[-1]].storage, name
            for o in m.options:   # every option a composite takes is a stage's option
                assert any(o.name in METHODS[s].defaults() or o.name in METHODS[s].refs
                           for s in m.stages), (name, o.name)
        else:
            assert callable(m.runner) and callable(m.summary), name
        assert isinstance(m.storage, Storage) and m.storage.key in STORAGE_KEYS, name
        assert m.storage.compressed is None or callable(m.storage.compressed)
        for o in m.options:
            assert isinstance(o, Option) and o.type in OPTION_TYPES, (name, o.name)
            assert o.cli or o.recipe, (name, o.name)
            if o.required:
                assert o.default is None, (name, o.name)
            if o.type == "choice" or o.choices:
                assert o.default is None or o.default in o.choices, (name, o.name)
            if o.type == "floats" and o.default is not None:
                assert all(isinstance(v, float) for v in o.default), (name, o.name)
        assert set(m.defaults()) == {o.name for o in m.options if o.type != "ref"}
        if m.report is None:
            assert m.stages, f"{name}: neither a recipe kind nor a composite of recipe kinds"
            assert all(METHODS[s].report is not None for s in m.stages), name
            continue
        assert m.report.sections and all(callable(s.render) for s in m.report.sections), name
        assert len(m.inputs) <= 1 and set(m.inputs) <= {"start", "teacher"}, name
        assert callable(m.report.checkpoints)


def test_compress_help_lists_exactly_the_registered_methods():
    out = CliRunner().invoke(main, ["compress", "--help"]).output
    listed = re.findall(r"^  (\S+)\s{2,}", out.split("Commands:")[1], re.M)
    assert sorted(listed) == sorted(METHODS)
    # the group's text names them too (in its own order)
    doc = " ".join(compress_group.help.split())
    assert sorted(doc.split(": ")[-1].rstrip(".").split(", ")) == sorted(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_command_is_its_registry_entry(name):
    m = METHODS[name]
    cmd = compress_group.commands[name]
    assert " ".join(cmd.help.split()) == " ".join(m.help.split())
    params = {p.name: p for p in cmd.params}
    cli = [o for o in m.options if o.cli]
    assert [p.name for p in cmd.params] == [o.name for o in cli] + ["output", "device"]
    assert params["output"].required and params["output"].help == m.output_help
    assert params["device"].default == "auto" and not params["device"].required
    for o in cli:
        p = params[o.name]
        if o.argument:
            assert isinstance(p, click.Argument) and p.metavar == o.argument
            continue
        assert p.required == o.required and p.help == o.help, o.name
        if o.type == "floats":
            assert p.default == ",".join(f"{v:g}" for v in o.default)
        elif o.type == "flag":
            assert p.is_flag and o.default is False
        elif not o.required:
            assert p.default == o.default, o.name
        assert bool(p.show_default) == (o.default is not None and o.type != "flag"), o.name
        if o.choices:
            assert list(p.type.choices) == list(o.choices)
        if o.min is not None:
            assert p.type.min == o.min and p.type.min_open == o.min_open
    out = CliRunner().invoke(main, ["compress", name, "--help"]).output
    for o in cli:
        if not o.argument:
            assert o.flag in out, o.name
    for o in m.options:
        if not o.cli:
            assert o.flag not in out, o.name


def test_the_recipe_takes_exactly_the_registered_kinds(tmp_path):
    from amchw.cli import main as cli
    from amchw.report import KINDS, RecipeError, load_recipe
    from amchw.report.recipe import _KEYS

    recipe_kinds = [n for n, m in METHODS.items() if m.report is not None]
    assert KINDS == ("train", *recipe_kinds)
    for k in recipe_kinds:
        assert _KEYS[k] == {o.name for o in METHODS[k].options if o.recipe}
    p = tmp_path / "r.toml"
    base = "[data.d]\nprofile='rml2016b'\n[[experiment]]\nname='t'\nkind='train'\n" \
           "model='ee-baseline'\ndata='d'\n"
    for kind in KINDS[1:] + ("bake",):
        p.write_text(base + f"[[experiment]]\nname='x'\nkind='{kind}'\n")
        try:
            load_recipe(p)
        except RecipeError as e:
            assert ("kind must be one of" in str(e)) == (kind == "bake"), (kind, e)
    # a key only the command line has is refused by the recipe, naming it
    p.write_text(base + "[[experiment]]\nname='x'\nkind='net-trim'\nstart='t'\nseed=1\n")
    r = CliRunner().invoke(cli, ["report", str(p), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown key(s) for net-trim: seed" in r.output


def test_a_required_recipe_key_and_a_method_check(tmp_path):
    from amchw.report import RecipeError, load_recipe

    p = tmp_path / "r.toml"
    base = "[data.d]\nprofile='rml2016b'\n[[experiment]]\nname='t'\nkind='train'\n" \
           "model='ee-baseline'\ndata='d'\n"
    p.write_text(base + "[[experiment]]\nname='x'\nkind='pq'\nstart='t'\n")
    with pytest.raises(RecipeError, match="needs subspaces = P"):
        load_recipe(p)
    p.write_text(base + "[[experiment]]\nname='x'\nkind='kd'\nstudent='ee-baseline'\n")
    with pytest.raises(RecipeError, match="needs teacher = <an earlier experiment>"):
        load_recipe(p)
    p.write_text(base + "[[experiment]]\nname='i'\nkind='imp'\nstart='t'\n"
                        "[[experiment]]\nname='j'\nkind='imp'\nstart='i'\n")
    with pytest.raises(RecipeError, match="start an imp from a trained model, not from an imp"):
        load_recipe(p)
    p.write_text(base + "[[experiment]]\nname='e'\nkind='early-exit'\nmodel='ee-v1'\n"
                        "data='nope'\n")
    with pytest.raises(RecipeError, match="data = 'nope' is not a"):
        load_recipe(p)


def test_the_library_defaults_are_the_registry_defaults():
    from amchw.compress import pipeline
    from amchw.compress.distill import Distillation
    from amchw.train import TrainConfig

    def sig(fn):
        return {k: v.default for k, v in inspect.signature(fn).parameters.items()
                if v.default is not inspect.Parameter.empty}

    nt, pq, kd = METHODS["net-trim"], METHODS["pq"], METHODS["kd"]
    imp, ee = METHODS["imp"], METHODS["early-exit"]
    s = sig(pipeline.net_trim)
    assert (s["epsilon"], s["frames"]) == (nt.option("epsilon").default,
                                           nt.option("frames").default)
    from amchw.compress.nettrim import net_trim as solver
    assert sig(solver)["rho"] == nt.option("rho").default
    s = sig(pipeline.product_quantization)
    for k in ("centroids", "retrain_epochs", "train_fraction"):
        assert s[k] == pq.option(k).default, k
    for fn in (pipeline.distill, Distillation.__init__):
        s = sig(fn)
        for k in ("temperature", "alpha", "convention"):
            assert s[k] == kd.option(k).default, k
    s = sig(pipeline.imp)
    assert (s["prune_epochs"], s["initial"], s["frequency"], s["power"]) == tuple(
        imp.option(k).default for k in ("prune_epochs", "initial_sparsity", "frequency",
                                        "power"))
    tc = {f.name: f.default for f in fields(TrainConfig)}
    s = sig(pipeline.early_exit)
    for k in ("epochs", "batch_size", "lr", "patience", "max_train", "seed"):
        assert ee.option(k).default == s[k] == tc[k], k
    assert ee.option("joint").default is s["joint"] is False
    # the quantization options are amchw train's and amchw prune's
    for cmd in ("train", "prune"):
        params = {p.name: p for p in main.commands[cmd].params}
        for o in QUANT_OPTIONS:
            assert params[o.name].default == o.default and params[o.name].help == o.help


def test_a_composite_runs_its_stages_in_turn(tmp_path):
    calls = []

    def runner(tag):
        def run(inputs, out, o, log=print):
            calls.append((tag, dict(inputs), out, o["k"]))
            return {"tag": tag}
        return run

    a = Method("zz-a", "A.", (Option("start", type="ref", required=True, argument="CK"),
                             Option("k", 1, type="int")), Storage("method"), runner("a"),
               summary=lambda r, o, out: [f"a: {out}"])
    b = Method("zz-b", "B.", (Option("start", type="ref", required=True, argument="CK"),
                             Option("k", 2, type="int")), Storage("pq"), runner("b"),
               summary=lambda r, o, out: [], figures=lambda r: [f"b {r['tag']}"])
    ab = Method("zz-ab", "A then B.", (Option("start", type="ref", required=True,
                                              argument="CK"), Option("k", 3, type="int")),
                Storage("pq"), stages=("zz-a", "zz-b"))
    try:
        for m in (a, b, ab):
            register(m)
        with pytest.raises(ValueError, match="registered twice"):
            register(a)
        echoed = []
        out = str(tmp_path / "x.pt")
        r = ab.run({"start": "s.pt"}, out, ab.settings({"k": 5}), echo=echoed.extend)
        mid = stage_path(out, "zz-a")
        assert mid == str(tmp_path / "x.zz-a.pt")
        assert calls == [("a", {"start": "s.pt"}, mid, 5), ("b", {"start": mid}, out, 5)]
        assert echoed == [f"a: {mid}"] and r == {"tag": "b"}
        assert ab.lines(r, {}, out) == ["b b", f"wrote {out}"]
    finally:
        for m in (a, b, ab):
            METHODS.pop(m.name, None)


def test_a_generated_command_runs_the_registry_entry(tmp_path):
    """A made-up method's command: its options parsed (lists from comma-separated text) and
    its summary printed; its PruneError a usage error when the entry says so."""
    from amchw.cli.compress import method_command
    from amchw.compress.errors import PruneError

    seen = {}

    def run(inputs, out, o, log=print):
        if o["fail"]:
            raise PruneError("no such layer", option="--layers")
        seen.update(inputs=inputs, out=out, **o)
        return {"n": len(o["schedule"])}

    m = Method("zz-demo", "Demo.", (
        Option("start", type="ref", required=True, argument="CK"),
        Option("schedule", (0.5, 0.7), "Targets.", "floats"),
        Option("layers", None, "Layers.", "names"),
        Option("fail", False, "Fail.", "flag"),
        Option("threshold", 0.1, type="float", cli=False)),
        Storage("method"), run, summary=lambda r, o, out: [f"{r['n']} stages: {out}"],
        usage_errors=True)
    cmd = method_command(m)
    r = CliRunner().invoke(cmd, ["ck.pt", "--schedule", "0.2,0.4,0.6", "--layers", "a, b",
                                 "-o", "o"])
    assert r.exit_code == 0 and r.output == "3 stages: o\n", r.output
    assert seen == {"inputs": {"start": "ck.pt"}, "out": "o", "schedule": [0.2, 0.4, 0.6],
                    "layers": ["a", "b"], "fail": False, "threshold": 0.1}
    r = CliRunner().invoke(cmd, ["ck.pt", "--schedule", "x", "-o", "o"])
    assert r.exit_code == 2 and "--schedule" in r.output
    r = CliRunner().invoke(cmd, ["ck.pt", "--fail", "-o", "o"])
    assert r.exit_code == 2 and "no such layer" in r.output
    assert "[default: 0.5,0.7]" in CliRunner().invoke(cmd, ["--help"]).output
