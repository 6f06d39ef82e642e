"""Hardware targets: a MAC array, its buffers, DRAM link, vector unit and energy table, as typed
presets with units in the field names. Every energy number names its source.

A user file (JSON or TOML) defines a new target or overrides fields of a preset:
    {"base": "edge-asic-45nm", "name": "my-asic", "rows": 16, "cols": 16,
     "energy": {"dram_pj_per_byte": 40.0}}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace

DATAFLOWS = ("os", "ws", "is")
DATAFLOW_NAMES = {"os": "output-stationary", "ws": "weight-stationary", "is": "input-stationary"}


class TargetError(ValueError):
    """An impossible or malformed hardware description, naming the option at fault."""


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action, in pJ, and static power, in mW; `sources` names where each came from."""
    mac_pj: float                 # one 8-bit multiply-accumulate into a 32-bit accumulator
    reg_pj: float                 # one PE register access (operand or accumulator)
    sram_pj_per_byte: float       # on-chip buffer read or write, per byte
    dram_pj_per_byte: float       # off-chip transfer, per byte
    vector_op_pj: float           # one vector-unit element operation (requant, pool, add)
    static_mw: float              # leakage / static power of the whole target
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        for f in fields(self):
            if f.name == "sources":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise TargetError(f"energy.{f.name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class Target:
    """A MAC array and its memory system. Sizes are in the units their names say."""
    name: str
    description: str
    rows: int                     # R: PE rows
    cols: int                     # C: PE columns
    dataflow: str                 # default dataflow: os | ws | is
    freq_mhz: float
    ifmap_sram_kib: float
    filter_sram_kib: float
    ofmap_sram_kib: float
    dram_bytes_per_cycle: float   # DRAM link bandwidth at the array clock
    vector_lanes: int             # element operations per cycle of the vector unit
    operand_bits: int             # operand width the array holds (8 for int8)
    acc_bits: int                 # PE accumulator width
    energy: EnergyTable
    kind: str = "asic"            # asic | fpga

    def __post_init__(self):
        for name in ("rows", "cols", "vector_lanes", "operand_bits", "acc_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise TargetError(f"target {self.name!r}: {name} must be a positive integer, "
                                  f"got {v!r}")
        for name in ("freq_mhz", "dram_bytes_per_cycle"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise TargetError(f"target {self.name!r}: {name} must be a positive number, "
                                  f"got {v!r}")
        for name in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise TargetError(f"target {self.name!r}: {name} must be a positive number, "
                                  f"got {v!r}")
        if self.dataflow not in DATAFLOWS:
            raise TargetError(f"target {self.name!r}: dataflow must be one of {DATAFLOWS}, "
                              f"got {self.dataflow!r}")
        # every buffer must hold at least one tile: R x C operands, or R x C accumulators
        tile = self.rows * self.cols
        for name, bits in (("ifmap_sram_kib", self.operand_bits),
                           ("filter_sram_kib", self.operand_bits),
                           ("ofmap_sram_kib", self.acc_bits)):
            need = tile * bits / 8
            if getattr(self, name) * 1024 < need:
                raise TargetError(
                    f"target {self.name!r}: {name}={getattr(self, name)} KiB is smaller than one "
                    f"tile of the {self.rows}x{self.cols} array ({need:.0f} bytes)")

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def with_array(self, rows: int, cols: int) -> "Target":
        return replace(self, rows=rows, cols=cols)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_array(text: str) -> tuple[int, int]:
    """'4x4' -> (4, 4); refuses zero, negative or malformed sizes, naming --array."""
    parts = str(text).lower().replace("×", "x").split("x")
    if len(parts) != 2:
        raise TargetError(f"--array must look like RxC (e.g. 4x4, 16x8), got {text!r}")
    try:
        r, c = int(parts[0]), int(parts[1])
    except ValueError:
        raise TargetError(f"--array must look like RxC with integer sizes, got {text!r}") from None
    if r < 1 or c < 1:
        raise TargetError(f"--array {text!r}: rows and columns must both be at least 1")
    return r, c


# ------------------------------------------------------------------------------ presets

_ASIC_SOURCES = {
    "mac_pj": "Accelergy 45 nm table: 8-bit MAC 0.315 pJ (docs/sources.md, Energy)",
    "reg_pj": "Eyeriss (Chen et al., ISCA 2016): a register-file access costs about 1x a MAC",
    "sram_pj_per_byte": "Accelergy 45 nm: 128 KiB SRAM 32.4 pJ per 64-bit read = 4.05 pJ/byte",
    "dram_pj_per_byte": "Accelergy: LPDDR4 8 pJ/bit = 64 pJ/byte",
    "vector_op_pj": "Horowitz ISSCC 2014 45 nm: 32-bit int mult 3.1 pJ + 32-bit add 0.1 pJ "
                    "(a requant multiply-add per element)",
    "static_mw": "not modelled (0): the 45 nm sources give no leakage figure",
}



def _energy(static_mw: float, sources: dict) -> EnergyTable:
    """The 45 nm per-action figures (Accelergy / Horowitz / Eyeriss) with a static power."""
    return EnergyTable(mac_pj=0.315, reg_pj=0.315, sram_pj_per_byte=32.4 / 8,
                       dram_pj_per_byte=8.0 * 8, vector_op_pj=3.1 + 0.1, static_mw=static_mw,
                       sources=sources)


def _fpga_sources(static_note: str) -> dict:
    """FPGA presets: none of the 45 nm sources gives a DSP-slice MAC or BRAM energy, so they
    reuse the 45 nm per-action figures as a stated proxy; the device's static power is added."""
    s = {k: f"proxy: {v} (no FPGA per-action figure in these sources: docs/sources.md, Energy)"
         for k, v in _ASIC_SOURCES.items() if k != "static_mw"}
    s["static_mw"] = static_note
    return s


PRESETS: dict[str, Target] = {
    "edge-asic-45nm": Target(
        name="edge-asic-45nm",
        description="edge ASIC, 45 nm, 8x8 int8 systolic array, 3 x 64 KiB SRAM, LPDDR4",
        rows=8, cols=8, dataflow="ws", freq_mhz=500.0,
        ifmap_sram_kib=64, filter_sram_kib=64, ofmap_sram_kib=64,
        dram_bytes_per_cycle=8.0, vector_lanes=8, operand_bits=8, acc_bits=32,
        energy=_energy(0.0, _ASIC_SOURCES),
        kind="asic"),
    "zynq7020": Target(
        name="zynq7020",
        description="Zynq-7020-class FPGA: 220 DSP48E1 -> 14x14 array (196 DSPs) at 100 MHz, "
                    "BRAM buffers (140 x 36 Kb total), 32-bit DDR3 via HP ports",
        rows=14, cols=14, dataflow="ws", freq_mhz=100.0,
        ifmap_sram_kib=128, filter_sram_kib=256, ofmap_sram_kib=128,
        dram_bytes_per_cycle=16.0, vector_lanes=16, operand_bits=8, acc_bits=32,
        energy=_energy(150.0, _fpga_sources(
            "assumed 150 mW PL+PS static, typical of a Zynq-7020 board estimate (Xilinx Power "
            "Estimator order of magnitude)")),
        kind="fpga"),
    "zcu104": Target(
        name="zcu104",
        description="ZCU104-class FPGA (XCZU7EV): 1,728 DSP48E2, two int8 MACs per DSP -> "
                    "48x64 array (3,072 MACs on 1,536 DSPs) at 250 MHz, BRAM/URAM buffers",
        rows=48, cols=64, dataflow="ws", freq_mhz=250.0,
        ifmap_sram_kib=1024, filter_sram_kib=2048, ofmap_sram_kib=1024,
        dram_bytes_per_cycle=64.0, vector_lanes=64, operand_bits=8, acc_bits=32,
        energy=_energy(600.0, _fpga_sources(
            "assumed 600 mW device static power, the order of a Zynq UltraScale+ EV part's "
            "PL+PS static estimate")),
        kind="fpga"),
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def target_from_dict(d: dict, where: str = "target") -> Target:
    """A Target from a dict: optional "base" preset, then the given fields override it."""
    d = dict(d)
    base = d.pop("base", None)
    if base is not None:
        if base not in PRESETS:
            raise TargetError(f"{where}: unknown base target {base!r}; "
                              f"choose from {sorted(PRESETS)}")
        d = _merge(asdict(PRESETS[base]), d)
    known = {f.name for f in fields(Target)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise TargetError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
    missing = sorted(known - set(d) - {"kind"})
    if missing:
        raise TargetError(f"{where}: missing field(s) {missing} (or give a 'base' preset)")
    e = d["energy"]
    if not isinstance(e, dict):
        raise TargetError(f"{where}: 'energy' must be a table of pJ figures")
    ekn = {f.name for f in fields(EnergyTable)}
    bad = sorted(set(e) - ekn)
    if bad:
        raise TargetError(f"{where}: unknown energy field(s) {bad}; known: {sorted(ekn)}")
    try:
        d["energy"] = EnergyTable(**e)
        return Target(**d)
    except (TypeError, TargetError) as err:
        raise TargetError(f"{where}: {err}") from None


def load_target(path: str) -> Target:
    """Read a target from a JSON or TOML file (by extension)."""
    if not os.path.exists(path):
        raise TargetError(f"target file {path!r} does not exist")
    try:
        if path.endswith(".toml"):
            import tomllib

            with open(path, "rb") as f:
                d = tomllib.load(f)
        else:
            with open(path) as f:
                d = json.load(f)
    except (ValueError, OSError) as err:
        raise TargetError(f"target file {path!r}: cannot parse: {err}") from None
    if not isinstance(d, dict):
        raise TargetError(f"target file {path!r}: expected a table/object at the top level")
    return target_from_dict(d, where=f"target file {path!r}")


def get_target(name_or_path: str) -> Target:
    """A preset by name, or a JSON/TOML file."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if name_or_path.endswith((".json", ".toml")):
        return load_target(name_or_path)
    raise TargetError(f"unknown target {name_or_path!r}; choose from {sorted(PRESETS)} "
                      "or give a .json/.toml file")
