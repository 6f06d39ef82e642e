"""Shared by the FINN suite: the zoo split and seeded exports."""

import warnings

import torch

from amchw.data.synthetic import frames_for
from amchw.export.qonnx import export_model
from amchw.models import build
from amchw.models.calibrate import calibrate

#: what FINN builds whole (one dataflow partition, only the input transpose outside)
BUILDS = ("vgg10", "vtcnn2", "ee-baseline")
#: refused by the export, with the rule that refuses each
REFUSED = {
    "cnn-matlab": "average pool", "cnn-slim": "average pool",
    "sbcnn-student": "average pool", "sbcnn-teacher": "concatenation",
    "resnet": "residual connection", "inception": "concatenation",
    "ee-v0": "2 outputs", "ee-v1": "2 outputs", "ee-v2": "2 outputs", "ee-v3": "2 outputs",
}


def _model(name):
    fr = frames_for(name, 16, seed=0)
    return calibrate(build(name, seed=0), torch.as_tensor(fr), seed=0), fr


def _export(name, path, form="finn"):
    m, fr = _model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_model(m, fr, path, name, form=form), fr


