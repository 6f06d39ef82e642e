"""Measuring the report's checkpoints: float and integer accuracy per SNR on the test split,
cycles and energy on every target, dense and with the method's compressed storage (its
registry entry's Storage), a method's own measurements (early exits); and the GRU-CNN seed's
network on the hardware without training."""

from __future__ import annotations

from amchw.compress.methods import METHODS

from .runner import Checkpoint


def _compressed_graph(graph, ck: Checkpoint, fmt: str, min_sparsity: float):
    """The graph with the checkpoint's compressed storage (its method's Storage.compressed:
    PQ -> pqP:K on its layer, pruning -> `fmt` on layers at least min_sparsity zero); None if
    nothing is compressed."""
    method = METHODS.get(ck.kind)
    if method is None or method.storage.compressed is None:
        return None
    g = method.storage.compressed(graph, ck.info, fmt, min_sparsity)
    return g if any(getattr(n.op, "w_format", "dense") != "dense" for n in g.nodes) else None


def _sim_summary(rep) -> dict:
    t = rep.totals()
    return {"cycles": t["cycles"], "energy_uj": t["energy_per_inference_uj"],
            "weight_bytes": t["weight_bytes"], "macs": t["macs_per_inference"],
            "latency_us": t["latency_us"]}


def _weights_and_biases(model) -> dict:
    """The conv and linear layers' weight and bias counts (BatchNorm not included), as the
    compression seed counts a network's parameter memory."""
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    return {"weights": sum(m.weight.numel() for m in layers),
            "biases": sum(m.bias.numel() for m in layers if m.bias is not None)}


def measure(cks: list[Checkpoint], recipe: dict, log=print) -> None:
    """Evaluate and simulate every checkpoint (in place)."""
    import torch

    from amchw.checkpoint import model_from_checkpoint, split_frames
    from amchw.compress.imp import footprint
    from amchw.evaluate import evaluate_checkpoint
    from amchw.lower.brevitas import lower
    from amchw.sims.simulate import simulate
    from amchw.verify.brevitas import verify_model

    targets = hardware_targets(recipe)
    fmt = recipe.get("sparse_format", "csr")
    min_sp = float(recipe.get("min_sparsity", 0.5))
    n_eval = int(recipe.get("eval_frames", 2000))
    exps = {e["name"]: e for e in recipe["experiment"]}
    for ck in cks:
        log(f"[measure] {ck.label}")
        ck.eval = evaluate_checkpoint(ck.path, ck.data, max_frames=n_eval,
                                      float_only_ok=True)
        model, saved = model_from_checkpoint(ck.path, float_only_ok=True)
        fp = footprint(model, int(saved["config"].get("weight_bits", 8)))
        ck.info.update({"model": saved["model"], "parameters": fp["parameters"],
                        "total_parameters": fp["total_parameters"],
                        **_weights_and_biases(model)})
        if saved.get("float_only"):      # no integer model to simulate until it is quantized
            ck.info["float_only"] = True
            ck.hardware = {t.name: None for t in targets}
            continue
        x, y, snr, _, which = split_frames(ck.data, model_input(saved["model"]), saved, "test",
                                           n_eval)
        graph = lower(model, torch.as_tensor(x[:8]), name=saved["model"])
        # amchw verify on the checkpoint: Brevitas, the IR and the kernels layer by layer
        # (float64 reference; a GRU's 1,024 Brevitas steps per frame: 4 frames)
        n_ver = 4 if any(n.op.kind == "GRU" for n in graph.nodes) else 32
        rep = verify_model(model, x[:n_ver], name=saved["model"])
        ck.info["verify"] = {"frames": rep.frames, "forbidden": rep.forbidden}
        comp = _compressed_graph(graph, ck, fmt, min_sp)
        for t in targets:
            hw = {"dense": _sim_summary(simulate(graph, t))}
            if comp is not None:
                hw["compressed"] = _sim_summary(simulate(comp, t))
                hw["format"] = sorted({n.op.w_format for n in comp.nodes
                                       if getattr(n.op, "w_format", "dense") != "dense"})
            ck.hardware[t.name] = hw
        method = METHODS.get(ck.kind)
        if method is not None and method.report.measure is not None:
            method.report.measure(ck, graph, (x, y, snr, which),
                                  method.settings(exps[ck.experiment]), targets)


def hardware_targets(recipe: dict) -> list:
    """The recipe's targets (amchw.sims.hardware), each with the recipe's `array` if given."""
    from amchw.sims.hardware import get_target, parse_array

    out = []
    for name in recipe.get("targets", ["edge-asic-45nm"]):
        t = get_target(name)
        if recipe.get("array"):
            t = t.with_array(*parse_array(recipe["array"]))
        out.append(t)
    return out


def gru_architecture(recipe: dict, log=print) -> dict:
    """The GRU-CNN seed's network on the hardware without training (its training steps the
    1024-step recurrence through Brevitas op by op, minutes per batch on a CPU): per cell
    count (Table 2) the parameters, footprint and cycles/latency/energy per frame; per
    sparsity (Table 3) the 80-cell model magnitude-pruned once, its non-zero parameters,
    footprint and cycles/energy with its compressed storage. Weights are random and
    calibrated on synthetic frames: the cycles of a dense layer do not depend on them, and a
    pruned layer's depend only on where its zeros are. The pruned model's weights come from
    torch.manual_seed(0) inside torch.random.fork_rng: the global RNG is left as it was."""
    import torch

    from amchw.compress.imp import footprint
    from amchw.compress.prune import magnitude_prune
    from amchw.data.synthetic import frames_for
    from amchw.ir.sparse import set_format
    from amchw.lower.brevitas import lower
    from amchw.models import QuantConfig
    from amchw.models.calibrate import calibrate
    from amchw.models.gru import CELLS, gru_cnn
    from amchw.sims.simulate import simulate

    targets = hardware_targets(recipe)
    x = torch.as_tensor(frames_for("gru-cnn", 8, seed=0))

    def measure_one(model, fmt=None):
        model = calibrate(model, x, seed=0).eval()
        g = lower(model, x[:2], name="gru-cnn")
        if fmt:
            g, _ = set_format(g, fmt, float(recipe.get("min_sparsity", 0.5)))
        hw = {}
        for t in targets:
            tot = simulate(g, t).totals()
            hw[t.name] = {"cycles": tot["cycles"], "latency_us": tot["latency_us"],
                          "energy_uj": tot["energy_per_inference_uj"],
                          "macs": tot["macs_per_inference"]}
        return hw

    cells_rows, sparse_rows = [], []
    for c in recipe.get("gru_cells", []):
        log(f"[gru-cnn] {c} cells")
        m = gru_cnn(QuantConfig(), cells=int(c))
        fp = footprint(m, 8)
        cells_rows.append({"cells": int(c), "parameters": fp["total_parameters"],
                           "float32_kb": fp["total_parameters"] * 4 / 1000,
                           "int8_kb": fp["total_parameters"] / 1000,
                           "hardware": measure_one(m)})
    for sp in recipe.get("gru_sparsities", []):
        log(f"[gru-cnn] {CELLS} cells pruned to {sp:g}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            m = gru_cnn(QuantConfig(), cells=CELLS)
        magnitude_prune(m, float(sp))
        fp = footprint(m, 8)
        sparse_rows.append({"sparsity": float(sp), "parameters": fp["parameters"],
                            "layer_sparsity": fp["sparsity"],
                            "footprint_kb": fp["footprint_bytes"] / 1000,
                            "hardware": measure_one(m, recipe.get("sparse_format", "csr"))})
    return {"cells": cells_rows, "pruned": sparse_rows}


def model_input(model: str) -> tuple:
    from amchw.models import ZOO

    return tuple(ZOO[model].input_shape)
