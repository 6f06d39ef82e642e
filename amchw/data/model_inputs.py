"""What each zoo model reads: its data profile (a key of amchw.data.synthetic.PROFILES) and the
shape of one frame as the model takes it (without the batch dimension).

The data side owns this fact, so that frames_for can shape frames for a model name without
importing the torch zoo: data never imports models; amchw.models builds its ZOO entries from
this table, and a model registered later adds its row through add_model_input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInput:
    profile: str
    input_shape: tuple[int, ...]


_EARLY_EXIT = ModelInput("rml2016b", (2, 128))

MODEL_INPUTS: dict[str, ModelInput] = {
    "vgg10": ModelInput("rml2018", (2, 1024)),
    "vtcnn2": ModelInput("rml2016", (1, 2, 128)),
    "cnn-matlab": ModelInput("rml2016-1024", (2, 1024)),
    "cnn-slim": ModelInput("rml2016-1024", (2, 1024)),
    "resnet": ModelInput("rml2016", (1, 2, 128)),
    "inception": ModelInput("rml2016", (1, 2, 128)),
    "sbcnn-teacher": ModelInput("rml2018", (1, 2, 1024)),
    "sbcnn-student": ModelInput("rml2018", (1, 2, 1024)),
    "ibcnn-teacher": ModelInput("rml2018", (1, 2, 1024)),
    "gru-cnn": ModelInput("rml2018", (2, 1024)),
    **{f"gru-cnn-{c}": ModelInput("rml2018", (2, 1024)) for c in (50, 60, 70, 90)},
    "ee-baseline": _EARLY_EXIT,
    "ee-v0": _EARLY_EXIT,
    "ee-v1": _EARLY_EXIT,
    "ee-v2": _EARLY_EXIT,
    "ee-v3": _EARLY_EXIT,
}


def add_model_input(name: str, profile: str, input_shape) -> ModelInput:
    """Record what model `name` reads; a name already listed must read the same."""
    new = ModelInput(profile, tuple(int(d) for d in input_shape))
    old = MODEL_INPUTS.setdefault(name, new)
    if old != new:
        raise ValueError(f"zoo model {name!r} reads {old}; it cannot be registered as {new}")
    return new
