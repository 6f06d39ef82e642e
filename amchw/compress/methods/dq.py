"""Distilled quantization (edge-efficient seed, Table IV): KD, then PQ of the student's FC
layer; the distilled student is kept as <stem>.kd.pt. A command only: in a recipe, DQ is a pq
experiment whose start is a kd experiment."""

from __future__ import annotations

from dataclasses import replace

from amchw.compress.registry import Method, Option, Storage, pq_storage, register, train_options

from . import kd, pq

METHOD = register(Method(
    name="dq",
    help="Distilled quantization (edge-efficient seed): KD, then PQ of the student's FC layer.",
    options=kd.OPTIONS + (
        replace(pq.SUBSPACES, help="PQ's P."),
        replace(pq.CENTROIDS, help="PQ's K_s."),
        Option("layer", None, "The FC layer to quantize (default: the first)."),
    ) + train_options(),
    stages=("kd", "pq"),
    storage=Storage("pq", pq_storage),
    output_help="The checkpoint to write (the distilled student is kept as <stem>.kd.pt).",
))
