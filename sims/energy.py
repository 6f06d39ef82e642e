"""Energy of one layer: action counts x energy per action (the target's EnergyTable), plus
static power x time, as Timeloop/Accelergy account it. Every term is linear in its count.

Actions:
  mac      useful multiply-accumulates (padded PEs of a ragged fold are gated: no energy)
  reg      PE register accesses: each MAC reads its two operand registers and updates one
           accumulator (3 per MAC), and each stationary value is written once into its PE
  sram     bytes read or written in the on-chip buffers (sims.memory)
  dram     bytes over the DRAM link
  vector   vector-unit element operations (requant, pooling, add, ...)
  static   static_mw x cycles / clock
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .hardware import Target

PARTS = ("mac", "reg", "sram", "dram", "vector", "static")


@dataclass(frozen=True)
class Energy:
    """Energy in pJ, by part."""
    mac: float = 0.0
    reg: float = 0.0
    sram: float = 0.0
    dram: float = 0.0
    vector: float = 0.0
    static: float = 0.0

    @property
    def total(self) -> float:
        return self.mac + self.reg + self.sram + self.dram + self.vector + self.static

    def __add__(self, other: "Energy") -> "Energy":
        return Energy(*(getattr(self, p) + getattr(other, p) for p in PARTS))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d


def static_pj(target: Target, cycles: int) -> float:
    """static_mw [mW] x cycles / (freq_mhz [MHz]) = static_mw * cycles / freq_mhz nJ."""
    return target.energy.static_mw * cycles / target.freq_mhz * 1e3


def energy(target: Target, *, macs: int = 0, reg_accesses: int = 0, sram_bytes: int = 0,
           dram_bytes: int = 0, vector_ops: int = 0, cycles: int = 0) -> Energy:
    e = target.energy
    return Energy(mac=macs * e.mac_pj, reg=reg_accesses * e.reg_pj,
                  sram=sram_bytes * e.sram_pj_per_byte, dram=dram_bytes * e.dram_pj_per_byte,
                  vector=vector_ops * e.vector_op_pj, static=static_pj(target, cycles))
