"""Shared by the FINN suite: the zoo split and seeded exports."""

import warnings

import torch

from amchw.data.synthetic import frames_for
from amchw.export.qonnx import export_model
from amchw.models import build
from amchw.models.calibrate import calibrate

#: what FINN builds whole (one dataflow partition, only the input transpose outside)
BUILDS = ("vgg10", "vtcnn2", "ee-baseline", "cnn-matlab", "cnn-slim", "sbcnn-student")
#: refused by the export, with the rule that refuses each
REFUSED = {name: r"read by \d+ branches" for name in (
    "sbcnn-teacher", "resnet", "inception", "ee-v0", "ee-v1", "ee-v2", "ee-v3")}


def _model(name):
    fr = frames_for(name, 16, seed=0)
    return calibrate(build(name, seed=0), torch.as_tensor(fr), seed=0), fr


def _export(name, path, form="finn"):
    m, fr = _model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_model(m, fr, path, name, form=form), fr


