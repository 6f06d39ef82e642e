"""Distilled pruning (edge-efficient seed, Table IV): KD, then Net-Trim of the student's FC
layer; the distilled student is kept as <stem>.kd.pt. A command only: in a recipe, DP is a
net-trim experiment whose start is a kd experiment."""

from __future__ import annotations

from dataclasses import replace

from amchw.compress.registry import Method, Option, Storage, register, sparse_storage, train_options

from . import kd, net_trim

METHOD = register(Method(
    name="dp",
    help="Distilled pruning (edge-efficient seed): KD, then Net-Trim of the student's FC layer.",
    options=kd.OPTIONS + (
        replace(net_trim.EPSILON, help="Net-Trim's relative epsilon."),
        replace(net_trim.FRAMES, help="Net-Trim's training frames."),
        Option("layer", None, "The FC layer to prune (default: the first)."),
    ) + train_options(),
    stages=("kd", "net-trim"),
    storage=Storage("net_trim", sparse_storage),
    output_help="The checkpoint to write (the distilled student is kept as <stem>.kd.pt).",
))
