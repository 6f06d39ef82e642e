"""`amchw zoo` and `amchw targets`: what models and hardware targets there are."""

from __future__ import annotations

import json

import click

from .common import command, fail, group


@command("zoo")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def zoo_cmd(as_json: bool) -> None:
    """List the model zoo: input shape, classes, parameters and MACs."""
    from amchw.runs import zoo_summary

    rows = zoo_summary()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    w = max([5] + [len(r["name"]) for r in rows])
    click.echo(f"{'model':<{w}} {'input':<8} {'classes':>7} {'params':>11} {'MACs':>12} "
               f"{'weights w8':>11}  description")
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        click.echo(f"{r['name']:<{w}} {shape:<8} {r['classes']:>7} {r['params']:>11,} "
                   f"{r['macs']:>12,} {r['weight_bytes']:>9,} B  {r['description']}")


@command("targets")
@click.option("--file", "target_file", default=None,
              help="also show a target defined in this JSON/TOML file")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def targets_cmd(target_file, as_json: bool) -> None:
    """List the hardware targets (presets, plus one from --file)."""
    from amchw.sims.hardware import PRESETS, TargetError, load_target

    targets = list(PRESETS.values())
    if target_file:
        try:
            targets.append(load_target(target_file))
        except TargetError as e:
            fail(str(e))
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in targets], indent=2))
        return
    click.echo(f"{'target':<16} {'kind':<5} {'array':>7} {'df':>3} {'MHz':>6} "
               f"{'SRAM KiB i/w/o':>16} {'DRAM B/cyc':>10} {'MAC pJ':>7} {'static mW':>9}")
    for t in targets:
        sram = f"{t.ifmap_sram_kib:g}/{t.filter_sram_kib:g}/{t.ofmap_sram_kib:g}"
        click.echo(f"{t.name:<16} {t.kind:<5} {f'{t.rows}x{t.cols}':>7} {t.dataflow:>3} "
                   f"{t.freq_mhz:>6g} {sram:>16} {t.dram_bytes_per_cycle:>10g} "
                   f"{t.energy.mac_pj:>7g} {t.energy.static_mw:>9g}")
    for t in targets:
        click.echo(f"\n{t.name}: {t.description}")
        for k, v in t.energy.sources.items():
            click.echo(f"  {k}: {v}")


@group("cache", invoke_without_command=True)
@click.pass_context
def cache_group(ctx) -> None:
    """The cache of lowered models and integer-check results (amchw.cache): where it is, what
    it holds; `amchw cache clear` empties it. AMCHW_CACHE_DIR moves it, AMCHW_CACHE=off turns
    it off."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(cache_info_cmd)


@cache_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def cache_info_cmd(as_json: bool = False) -> None:
    """Where the cache is, whether it is on, and what it holds."""
    from amchw import cache

    d = cache.info()
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"cache: {d['dir']} ({'on' if d['enabled'] else 'off: AMCHW_CACHE'})")
    held = {k: v for k, v in d["kinds"].items() if v["files"]}
    for kind, v in held.items():
        click.echo(f"  {kind}: {v['files']} files, {v['bytes']:,} B")
    if not held:
        click.echo("  empty")


@cache_group.command("clear")
def cache_clear_cmd() -> None:
    """Remove every cached graph and check result."""
    from amchw import cache

    try:
        n = cache.clear()
    except OSError as e:
        fail(f"{cache.cache_dir()}: cannot clear ({e.strerror or e})")
    click.echo(f"removed {n} files from {cache.cache_dir()}")
