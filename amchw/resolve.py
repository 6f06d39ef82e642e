"""Any model spec -> model, IR graph and sample frames. A spec is a zoo name (random weights
calibrated on synthetic frames), an amchw checkpoint (.pt), an IR graph saved by amchw (.npz)
or a QONNX file (.qonnx/.onnx); every command reads its MODEL here, so a spec means the same
to all of them, and one that cannot be read is a RequestError naming it."""

from __future__ import annotations

from pathlib import Path

QONNX_SUFFIXES = (".qonnx", ".onnx")


class RequestError(Exception):
    """What a command asked for cannot be done; the message names the model, file or option.
    `usage`: the request itself is wrong (the command line exits 2, naming `option` when
    given); otherwise it failed on what it read (exit 1)."""

    def __init__(self, message: str, usage: bool = False, option: str | None = None):
        super().__init__(message)
        self.usage = usage
        self.option = option


def _unknown(spec: str) -> RequestError:
    from amchw.data.model_inputs import MODEL_INPUTS as ZOO  # the zoo's names, without torch

    if Path(spec).is_dir():
        return RequestError(f"{spec}: is a directory, not a model file", usage=True)
    return RequestError(f"MODEL {spec!r} is neither a zoo model ({', '.join(ZOO)}) nor a file",
                        usage=True)


def _zoo_name(spec: str) -> bool:
    """Whether `spec` is a zoo model's name, from the torch-free table of what each reads
    (amchw.data.model_inputs), so that a file is told apart without importing the zoo."""
    from amchw.data.model_inputs import MODEL_INPUTS

    return spec in MODEL_INPUTS


def is_qonnx_file(spec: str) -> bool:
    """Whether `spec` names a QONNX file (not a zoo model)."""
    return not _zoo_name(spec) and Path(spec).suffix.lower() in QONNX_SUFFIXES


def checkpoint_model_name(spec: str) -> str:
    """The zoo architecture a checkpoint file was saved from."""
    from amchw.checkpoint import load

    path = Path(spec)
    if not path.is_file():
        raise _unknown(spec)
    try:
        return str(load(path)["model"])
    except Exception as e:  # any unreadable file is a user error naming the file
        raise RequestError(f"{path}: not an amchw checkpoint ({type(e).__name__}: {e})") from None


def model_name(spec: str) -> str:
    """The zoo architecture of a zoo name or a checkpoint file."""
    from amchw.models import ZOO

    return spec if spec in ZOO else checkpoint_model_name(spec)


def load_model(spec: str, scales: str, weight_bits: int, act_bits: int, frames, seed: int):
    """A zoo name (random weights, calibrated on `frames`) or a checkpoint file."""
    import torch

    from amchw.models import ZOO, QuantConfig, build
    from amchw.models.calibrate import calibrate

    if spec in ZOO:
        cfg = QuantConfig(weight_bits=weight_bits, act_bits=act_bits, scales=scales)
        model = build(spec, cfg, seed=seed)
        return calibrate(model, torch.as_tensor(frames), seed=seed)
    return checkpoint_model(spec)[0]


def checkpoint_model(spec: str):
    """(model in eval mode, checkpoint dict) of an amchw checkpoint file, read once."""
    from amchw.checkpoint import model_from_checkpoint

    path = Path(spec)
    if not path.exists():
        raise _unknown(spec)
    try:
        return model_from_checkpoint(path)
    except ValueError as e:
        raise RequestError(str(e)) from None


def model_and_frames(spec: str, scales: str, weight_bits: int, act_bits: int, n_frames: int,
                     seed: int):
    """(zoo name, model, n_frames synthetic frames of its profile) of a zoo name or checkpoint;
    a zoo model is calibrated on those frames."""
    from amchw.data.synthetic import frames_for

    name = model_name(spec)
    frames = frames_for(name, n_frames, seed=seed)
    return name, load_model(spec, scales, weight_bits, act_bits, frames, seed), frames


def frames_for_shape(graph, n: int, seed: int):
    """(sample inputs, what they are) for a graph read from a file: synthetic RadioML frames
    of the profile with that many samples per frame, else seeded values over the input
    quantizer's range (any input shape: a single layer, an image CNN, an MLP)."""
    import numpy as np

    from amchw.data.synthetic import PROFILES, frames_for
    from amchw.ir.samples import sample_inputs
    from amchw.ir.types import QType

    shape = graph.inputs[0].shape
    size = int(np.prod(shape))
    if not isinstance(graph.inputs[0].dtype, QType):
        for prof, p in PROFILES.items():
            if 2 * p.length == size:
                f = frames_for(prof, n, seed=seed)
                return f.reshape((n, *shape)), f"synthetic {prof} frames, seed {seed}"
    return sample_inputs(graph, n, seed)


def _missing(path) -> RequestError | None:
    """A usage error for a model file that is not there, or is a directory, else None: the
    same answer (exit 2) whatever the file's kind."""
    p = Path(path)
    if p.is_dir():
        return RequestError(f"{path}: is a directory, not a model file", usage=True)
    if not p.exists():
        return RequestError(f"{path}: no such file (MODEL is a zoo name, a checkpoint, an IR "
                            "graph or a QONNX file)", usage=True)
    return None


def load_qonnx_file(path):
    """The IR graph of a QONNX file (RequestError with the importer's reason)."""
    from amchw.lower.qonnx import QonnxImportError, load_qonnx

    err = _missing(path)
    if err is not None:
        raise err
    try:
        return load_qonnx(path)
    except QonnxImportError as e:
        raise RequestError(str(e)) from None


CALIBRATION_FRAMES = 16  # synthetic frames a zoo model's activation scales are calibrated on


class Resolved:
    """A MODEL's IR graph and how to get sample frames for it. `key` identifies the graph in
    the cache (amchw.cache; None when the cache is off); `cached` says whether it was read
    from there."""

    def __init__(self, graph, key, cached, zoo_name=None, seed=0):
        self.graph, self.key, self.cached = graph, key, cached
        self.zoo_name, self.seed = zoo_name, seed

    def frames(self, n: int):
        """(n sample frames, what they are): synthetic frames of the zoo model's profile, else
        frames_for_shape."""
        if self.zoo_name is not None:
            from amchw.data.synthetic import frames_for

            return (frames_for(self.zoo_name, n, seed=self.seed),
                    f"synthetic {self.zoo_name} frames, seed {self.seed}")
        return frames_for_shape(self.graph, n, self.seed)


def resolve_graph(spec: str, scales: str, weight_bits: int, act_bits: int,
                  seed: int) -> Resolved:
    """MODEL -> its IR graph. MODEL: a zoo name, an amchw checkpoint (.pt), an IR graph saved
    by amchw (.npz) or a QONNX file (.qonnx/.onnx). A zoo model is built with the seed and
    calibrated on CALIBRATION_FRAMES synthetic frames. Zoo models, checkpoints and QONNX files
    are lowered once and read back from the cache after that (amchw.cache: keyed by the
    model and its options or the file's bytes, and the code), so a warm run imports neither
    torch nor onnx."""
    from amchw import cache
    from amchw.ir.io import load as load_ir
    from amchw.ir.types import IRError

    path = Path(spec)
    zoo = _zoo_name(spec)
    if not zoo:
        if is_qonnx_file(spec) or path.suffix.lower() == ".npz":
            err = _missing(path)
            if err is not None:
                raise err
        elif not path.is_file():
            raise _unknown(spec)
    on = cache.enabled()
    if not zoo and path.suffix.lower() == ".npz":
        try:
            graph = load_ir(path)
        except (IRError, OSError, ValueError, KeyError) as e:
            raise RequestError(f"{spec}: {e}") from None
        key = cache.make_key("ir-file", sha256=cache.file_digest(path)) if on else None
        return Resolved(graph, key, False, seed=seed)
    if zoo:
        fields = dict(model=spec, scales=scales, weight_bits=weight_bits, act_bits=act_bits,
                      seed=seed, calibration_frames=CALIBRATION_FRAMES,
                      versions=cache.framework_versions())
        kind = "zoo"
    elif is_qonnx_file(spec):
        fields, kind = dict(sha256=cache.file_digest(path)), "qonnx"
    else:
        fields = dict(sha256=cache.file_digest(path), versions=cache.framework_versions())
        kind = "checkpoint"
    key = cache.make_key(kind, **fields) if on else None
    hit = cache.load_graph(key) if key else None
    if hit is not None:
        graph, meta = hit
        return Resolved(graph, key, True, meta.get("zoo_name"), seed)
    if kind == "qonnx":
        graph, name = load_qonnx_file(path), None
    else:
        graph, name = _lower_model(spec, scales, weight_bits, act_bits, seed)
    if key:
        cache.store_graph(key, graph, {"spec": spec, "kind": kind, "zoo_name": name})
    return Resolved(graph, key, False, name, seed)


def _lower_model(spec, scales, weight_bits, act_bits, seed):
    """(IR graph, zoo name) of a zoo name or checkpoint, lowered through Brevitas."""
    import torch

    from amchw.ir.types import IRError
    from amchw.lower.brevitas import LoweringError, lower

    name, model, frames = model_and_frames(spec, scales, weight_bits, act_bits,
                                           CALIBRATION_FRAMES, seed)
    try:
        graph = lower(model, torch.as_tensor(frames[:4]), name=name)
    except (LoweringError, IRError) as e:
        raise RequestError(f"{spec}: cannot lower to the IR: {e}") from None
    return graph, name


def graph_and_frames(spec: str, scales: str, weight_bits: int, act_bits: int, n_frames: int,
                     seed: int):
    """MODEL -> (IR graph, n_frames sample frames, what the frames are); resolve_graph."""
    r = resolve_graph(spec, scales, weight_bits, act_bits, seed)
    return (r.graph, *r.frames(n_frames))


def compression_source(spec: str, scales: str = "po2", weight_bits: int = 8, act_bits: int = 8,
                       seed: int = 0, prepare=None):
    """(model, checkpoint dict, prepare's result) for the compression commands. A zoo name is
    built, `prepare`d (e.g. pruned), then calibrated on synthetic frames; a checkpoint is loaded
    and `prepare`d, keeping its trained scales."""
    from dataclasses import asdict

    import torch

    from amchw.data.synthetic import PROFILES, frames_for
    from amchw.models import ZOO, QuantConfig, build
    from amchw.models.calibrate import calibrate

    if spec in ZOO:
        cfg = QuantConfig(weight_bits=weight_bits, act_bits=act_bits, scales=scales)
        model = build(spec, cfg, seed=seed)
        done = prepare(model) if prepare else None
        model = calibrate(model, torch.as_tensor(frames_for(spec, 256, seed=seed)), seed=seed)
        return model, {"model": spec, "config": asdict(cfg),
                       "classes": list(PROFILES[ZOO[spec].profile].classes)}, done
    model, ck = checkpoint_model(spec)
    return model, ck, prepare(model) if prepare else None
