"""Cost figures of an IR graph in the terms of qonnx.util.inference_cost and the ITU-T ML5G
hardware-efficient AMC challenge (2021).

Per Conv/Dense, for one frame:
  macs_dense   output positions x filters x reduction length (grouped: per group)
  macs         macs_dense x density, density = nonzero weight codes / weights (qonnx
               discounts MACs with a constant zero weight when discount_sparsity is on);
               for one frame this is output positions x nonzero weights, an integer
  bops         macs x input bits x weight bits
  weight_bits  nonzero weights x weight bits (weights only, no bias, as qonnx counts them)
  out_bits     output elements x accumulator bits
Memory footprint: the weights stored densely at their bit width, the int32 biases, and the
largest activation tensor at its bit width.
Challenge score = 0.5 * BOPs / 807,699,904 + 0.5 * weight bits / 1,244,936 (its VGG10 w8a8
baseline, which has 12,620,311 MACs); lower is better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from amchw.ir.graph import Graph
from amchw.ir.ops import Conv, Dense

CHALLENGE_BOPS = 807_699_904
CHALLENGE_WEIGHT_BITS = 1_244_936
CHALLENGE_MACS = 12_620_311


@dataclass
class LayerCost:
    node: str
    op: str
    macs_dense: int
    macs: int
    a_bits: int
    w_bits: int
    bops: int
    weights: int
    nonzero_weights: int
    weight_bits: int
    out_elems: int
    out_bits: int
    weight_bytes: int      # dense storage at the weight bit width
    bias_bytes: int


@dataclass
class CostReport:
    model: str
    discount_sparsity: bool
    layers: list = field(default_factory=list)
    activation_bytes: int = 0   # the largest activation tensor at its bit width

    def total(self, key: str) -> int:
        return sum(getattr(r, key) for r in self.layers)

    @property
    def score(self) -> float:
        return 0.5 * self.total("bops") / CHALLENGE_BOPS \
            + 0.5 * self.total("weight_bits") / CHALLENGE_WEIGHT_BITS

    def totals(self) -> dict:
        keys = ("macs_dense", "macs", "bops", "weights", "nonzero_weights", "weight_bits",
                "out_elems", "out_bits", "weight_bytes", "bias_bytes")
        t = {k: self.total(k) for k in keys}
        t["activation_bytes"] = self.activation_bytes
        t["memory_bytes"] = t["weight_bytes"] + t["bias_bytes"] + self.activation_bytes
        t["sparsity"] = 1 - t["nonzero_weights"] / t["weights"] if t["weights"] else 0.0
        t["challenge_score"] = self.score
        return t

    def to_dict(self) -> dict:
        return {"model": self.model, "discount_sparsity": self.discount_sparsity,
                "layers": [asdict(r) for r in self.layers], "totals": self.totals(),
                "challenge": {"bops": CHALLENGE_BOPS, "weight_bits": CHALLENGE_WEIGHT_BITS,
                              "macs": CHALLENGE_MACS}}


def cost(graph: Graph, discount_sparsity: bool = True) -> CostReport:
    vals = graph.values()
    rep = CostReport(graph.name, discount_sparsity)
    for n in graph.nodes:
        v = n.output
        nbytes = -(-int(np.prod(v.shape)) * v.dtype.bits // 8)
        rep.activation_bytes = max(rep.activation_bytes, nbytes)
        op = n.op
        if not isinstance(op, (Conv, Dense)):
            continue
        w = op.weight
        k_ = w.shape[0]
        pix = int(np.prod(v.shape[1:])) if isinstance(op, Conv) else 1
        per_filter = int(np.prod(w.shape[1:]))
        dense = pix * k_ * per_filter
        nnz = int(np.count_nonzero(w - op.w_type.zero_point))
        used = nnz if discount_sparsity else w.size
        macs = pix * used
        a_bits = vals[n.inputs[0]].dtype.bits
        rep.layers.append(LayerCost(
            node=n.name, op=f"Conv{op.ndim}d" if isinstance(op, Conv) else "Dense",
            macs_dense=dense, macs=macs, a_bits=a_bits, w_bits=op.w_type.bits,
            bops=macs * a_bits * op.w_type.bits, weights=int(w.size), nonzero_weights=nnz,
            weight_bits=used * op.w_type.bits, out_elems=int(np.prod(v.shape)),
            out_bits=int(np.prod(v.shape)) * v.dtype.bits,
            weight_bytes=-(-int(w.size) * op.w_type.bits // 8),
            bias_bytes=0 if op.bias is None else 4 * int(op.bias.size)))
    return rep


def qonnx_inference_cost(path, discount_sparsity: bool = True) -> dict:
    """qonnx.util.inference_cost on a file (IR version capped for onnxruntime), per node."""
    from qonnx.util.inference_cost import inference_cost

    from .compat import capped_ir_version

    with capped_ir_version():
        return inference_cost(str(path), discount_sparsity=discount_sparsity,
                              cost_breakdown=True)
