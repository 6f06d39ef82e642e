"""Early exit on the machine: a simulated graph with an exit decision (EntropyExit) splits into
the layers the exit head and its decision need ("common": trunk, exit head, decision) and those
only the final classifier needs ("rest"). A frame that exits skips the rest, so with an exit
fraction f a frame costs, in expectation, C_common + (1 - f) C_rest cycles (and energy alike).

Costs are per frame: a report of a batch of B frames is divided by B (the rest then runs on
the frames that did not exit, at the same cost per frame)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from amchw.ir.graph import Graph, needed_by
from amchw.ir.ops import EntropyExit

from .simulate import SimReport, SimulationError


@dataclass(frozen=True)
class ExitSplit:
    """The layers of a report in two parts, with their cycles and energy (whole batch)."""
    common: tuple[str, ...]       # layers the exit head and its decision need
    rest: tuple[str, ...]         # layers only the final classifier needs
    common_cycles: int
    rest_cycles: int
    common_energy_pj: float
    rest_energy_pj: float
    batch: int

    def cycles(self, exit_fraction: float) -> float:
        """Expected cycles per frame: (C_common + (1 - f) C_rest) / batch."""
        return (self.common_cycles + (1.0 - exit_fraction) * self.rest_cycles) / self.batch

    def energy_uj(self, exit_fraction: float) -> float:
        """Expected energy per frame in uJ: (E_common + (1 - f) E_rest) / batch."""
        return (self.common_energy_pj + (1.0 - exit_fraction) * self.rest_energy_pj) \
            / self.batch * 1e-6

    @property
    def full_cycles(self) -> float:
        return self.cycles(0.0)

    @property
    def full_energy_uj(self) -> float:
        return self.energy_uj(0.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(common=list(self.common), rest=list(self.rest),
                 full_cycles=self.full_cycles, full_energy_uj=self.full_energy_uj,
                 exit_cycles=self.cycles(1.0), exit_energy_uj=self.energy_uj(1.0))
        return d


def split_layers(graph: Graph, report: SimReport, exit_output: str = "out0") -> ExitSplit:
    """Split `report`'s layers (simulate() of `graph`) into what `exit_output` and the
    graph's exit decision need and the rest."""
    dec = [n for n in graph.nodes if isinstance(n.op, EntropyExit)]
    if len(dec) != 1:
        raise SimulationError(f"graph {graph.name!r} has {len(dec)} exit decisions "
                              "(EntropyExit); early-exit costs need exactly one "
                              "(amchw.ir.early_exit.add_exit_rule)")
    if exit_output not in graph.outputs:
        raise SimulationError(f"graph {graph.name!r} has no output {exit_output!r}")
    need = needed_by(graph, [exit_output, dec[0].output.name])
    common, rest = [], []
    cc = rc = 0
    ce = re_ = 0.0
    for r in report.layers:
        if r.node.split("/")[0] in need:   # a GRU cell's layers follow their GRU node
            common.append(r.node)
            cc += r.cycles
            ce += r.energy.total
        else:
            rest.append(r.node)
            rc += r.cycles
            re_ += r.energy.total
    return ExitSplit(tuple(common), tuple(rest), cc, rc, ce, re_, report.batch)


@dataclass
class ExitRow:
    """One line of the early-exit table: the frames of one SNR (or all of them)."""
    snr: int | str                # dB, or "all"
    frames: int
    exits: int                    # frames that left at the exit
    exit_fraction: float
    accuracy: float | None        # combined decision vs labels (None without labels)
    exit_accuracy: float | None   # accuracy of the exit head on the frames that exited
    final_accuracy: float | None  # the final classifier alone on every frame (no exit)
    expected_cycles: float        # per frame
    expected_energy_uj: float     # per frame
    cycles_saving: float          # 1 - expected / no-exit cycles
    energy_saving: float          # 1 - expected / no-exit energy


@dataclass
class EarlyExitReport:
    threshold: float | None
    split: ExitSplit
    rows: list[ExitRow]
    sweep: list[dict] | None = field(default=None)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "split": self.split.to_dict(),
                "rows": [asdict(r) for r in self.rows], "sweep": self.sweep}


def _row(split: ExitSplit, snr, flags, labels, exit_pred, final_pred) -> ExitRow:
    n = int(flags.size)
    k = int(np.count_nonzero(flags))
    f = k / n if n else 0.0
    acc = ex_acc = fin_acc = None
    if labels is not None and n:
        pred = np.where(flags != 0, exit_pred, final_pred)
        acc = float(np.mean(pred == labels))
        fin_acc = float(np.mean(final_pred == labels))
        ex_acc = float(np.mean(exit_pred[flags != 0] == labels[flags != 0])) if k else None
    cyc, en = split.cycles(f), split.energy_uj(f)
    return ExitRow(snr, n, k, f, acc, ex_acc, fin_acc, cyc, en,
                   1.0 - cyc / split.full_cycles if split.full_cycles else 0.0,
                   1.0 - en / split.full_energy_uj if split.full_energy_uj else 0.0)


def early_exit(split: ExitSplit, flags, snrs=None, labels=None, exit_pred=None,
               final_pred=None, threshold: float | None = None) -> EarlyExitReport:
    """Per SNR (ascending) and for all frames: frames, exit fraction, accuracy of the combined
    decision (class = exit_pred where the frame exits, else final_pred) against `labels`, and
    the expected cycles and energy per frame. `snrs` None: one "all" row."""
    flags = np.asarray(flags).ravel()
    n = flags.size
    if labels is not None:
        labels, exit_pred, final_pred = (np.asarray(a).ravel() for a in
                                         (labels, exit_pred, final_pred))
        if not labels.size == exit_pred.size == final_pred.size == n:
            raise ValueError(f"{n} flags but {labels.size} labels, {exit_pred.size} exit and "
                             f"{final_pred.size} final predictions")
    rows = []
    if snrs is not None:
        snrs = np.asarray(snrs).ravel()
        if snrs.size != n:
            raise ValueError(f"{n} flags but {snrs.size} SNRs")
        for s in np.unique(snrs):
            m = snrs == s
            rows.append(_row(split, int(s), flags[m], *(None if a is None else a[m] for a in
                                                         (labels, exit_pred, final_pred))))
    rows.append(_row(split, "all", flags, labels, exit_pred, final_pred))
    return EarlyExitReport(threshold, split, rows)


def sweep(split: ExitSplit, flag_sets: dict, labels=None, exit_pred=None,
          final_pred=None) -> list[dict]:
    """The trade-off over thresholds: {threshold: flags} -> one dict per threshold (all
    frames): threshold, exit_fraction, accuracy, expected_cycles, expected_energy_uj,
    cycles_saving, energy_saving."""
    out = []
    for t, flags in flag_sets.items():
        r = _row(split, "all", np.asarray(flags).ravel(), labels, exit_pred, final_pred)
        out.append({"threshold": t, "exit_fraction": r.exit_fraction, "accuracy": r.accuracy,
                    "expected_cycles": r.expected_cycles,
                    "expected_energy_uj": r.expected_energy_uj,
                    "cycles_saving": r.cycles_saving, "energy_saving": r.energy_saving})
    return out


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def format_early_exit(rep: EarlyExitReport) -> str:
    """The per-SNR table, the no-exit reference and (if any) the threshold sweep."""
    sp = rep.split
    t = "" if rep.threshold is None else f" at threshold {rep.threshold:g}"
    lines = [f"early exit{t}: common part {len(sp.common)} layers "
             f"({sp.common_cycles / sp.batch:,.0f} cycles, "
             f"{sp.common_energy_pj / sp.batch * 1e-6:.3f} uJ per frame), rest "
             f"{len(sp.rest)} layers ({sp.rest_cycles / sp.batch:,.0f} cycles, "
             f"{sp.rest_energy_pj / sp.batch * 1e-6:.3f} uJ)",
             f"{'SNR dB':>7} {'frames':>7} {'exit %':>7} {'acc %':>6} {'final %':>7} "
             f"{'exp. cycles':>12} {'exp. uJ':>9} {'saving %':>8}"]
    for r in rep.rows:
        lines.append(f"{r.snr:>7} {r.frames:>7,} {_pct(r.exit_fraction):>7} "
                     f"{_pct(r.accuracy):>6} {_pct(r.final_accuracy):>7} "
                     f"{r.expected_cycles:>12,.0f} {r.expected_energy_uj:>9.3f} "
                     f"{_pct(r.cycles_saving):>8}")
    lines.append(f"{'no exit':>7} {'':>7} {'0.0':>7} {_pct(rep.rows[-1].final_accuracy):>6} "
                 f"{'':>7} {sp.full_cycles:>12,.0f} {sp.full_energy_uj:>9.3f} {'0.0':>8}")
    lines.append("acc: the combined decision (the exit head's class where the frame exits, "
                 "else the final classifier's); final: the final classifier alone; saving: "
                 "expected cycles against no exit")
    if rep.sweep:
        lines.append("")
        lines.append(f"{'threshold':>9} {'exit %':>7} {'acc %':>6} {'exp. cycles':>12} "
                     f"{'exp. uJ':>9} {'saving %':>8}")
        for s in rep.sweep:
            lines.append(f"{s['threshold']:>9g} {_pct(s['exit_fraction']):>7} "
                         f"{_pct(s['accuracy']):>6} {s['expected_cycles']:>12,.0f} "
                         f"{s['expected_energy_uj']:>9.3f} {_pct(s['cycles_saving']):>8}")
    return "\n".join(lines)
