"""Shared by the FINN suite: the zoo split and seeded exports."""

import warnings

import torch

from amchw.data.synthetic import frames_for
from amchw.export.qonnx import export_model
from amchw.models import build
from amchw.models.calibrate import calibrate

#: what FINN builds whole (one dataflow partition, only the input transpose outside); the
#: early exits, ResNet and SBCNN's teacher fork, and FINN builds them with
#: step_streamline_forks; so is InceptionNet (test_finn_inception.py, slow). The GRU-CNN is
#: refused (recurrent; tests/lower/test_lower_qonnx.py)
BUILDS = ("vgg10", "vtcnn2", "ee-baseline", "cnn-matlab", "cnn-slim", "sbcnn-student",
          "ee-v0", "ee-v1", "ee-v2", "ee-v3", "resnet", "sbcnn-teacher", "ibcnn-teacher")
#: built in the slow run only (`pytest -q -m slow`): the middle early exits, the same
#: structure as ee-v0 and ee-v3 with the exit elsewhere (25 s each through FINN)
SLOW_BUILDS = ("ee-v1", "ee-v2", "resnet", "sbcnn-teacher", "ibcnn-teacher")
#: compared on outputs only: FINN requantizes each addend of a residual add with its own
#: MultiThreshold where the IR's Add does both in one op, so there is no one-to-one pairing
NO_LAYER_VIEW = ("resnet", "sbcnn-teacher", "ibcnn-teacher")

def _model(name):
    fr = frames_for(name, 16, seed=0)
    return calibrate(build(name, seed=0), torch.as_tensor(fr), seed=0), fr


def _export(name, path, form="finn"):
    m, fr = _model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_model(m, fr, path, name, form=form), fr
