"""Make a randomly initialised zoo model numerically meaningful for verification (no training).

Invariant: the result depends only on (model weights, frames, seed); no global RNG is touched,
and the model comes back in eval() mode with BN statistics and activation scales fitted to data.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

with warnings.catch_warnings():
    # brevitas.graph warns on import about an optional CUDA package and its deprecated fx copy.
    warnings.filterwarnings("ignore", message="fast_hadamard_transform")
    warnings.filterwarnings("ignore", message="brevitas.fx is deprecated")
    from brevitas.graph.calibrate import calibration_mode, quantization_status_manager

__all__ = ["calibrate", "as_model_input", "randomize_bn_affine"]

_BN = nn.modules.batchnorm._BatchNorm


def as_model_input(model: nn.Module, frames) -> torch.Tensor:
    """frames (numpy or torch, (N, 2, L) or already shaped) as a float32 tensor of the model's
    input shape, read from `model.amchw_meta["input_shape"]` when the model has one."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    x = x.to(torch.float32)
    meta = getattr(model, "amchw_meta", None)
    if meta is not None:
        x = x.reshape((x.shape[0],) + tuple(meta["input_shape"]))
    return x


def randomize_bn_affine(model: nn.Module, generator: torch.Generator) -> None:
    """BN weight ~ U(0.5, 1.5), bias ~ N(0, 0.1^2): random but sane (no dead or exploding
    channels), drawn in module order from `generator`."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BN) and m.affine:
                w = torch.rand(m.weight.shape, generator=generator, dtype=torch.float64) + 0.5
                b = torch.randn(m.bias.shape, generator=generator, dtype=torch.float64) * 0.1
                m.weight.copy_(w.to(m.weight.dtype))
                m.bias.copy_(b.to(m.bias.dtype))


def _batches(x: torch.Tensor, batch_size: int):
    """ceil(N / batch_size) nearly equal batches (sizes differ by at most one), so no batch of
    one frame reaches a train-mode BatchNorm1d after a linear layer unless N is 1."""
    return torch.tensor_split(x, -(-x.shape[0] // batch_size))


def calibrate(
    model: nn.Module,
    frames,
    batch_size: int = 256,
    *,
    seed: int | torch.Generator = 0,
) -> nn.Module:
    """Calibrate `model` in place on `frames` and return it in eval() mode.

    1. BN affine parameters get random, sane values from `seed` (randomize_bn_affine). This comes
       first because a BN's running statistics depend on the affine of every BN upstream.
    2. BN running statistics from data: one pass over the frames with only the BN modules in
       train() mode (dropout and quantizers stay in eval), under torch.no_grad, with activation
       and bias quantization disabled (weights stay quantized) since activation scales are not
       fitted yet. momentum=None makes each BN's statistics the exact average over all batches,
       so one pass gives what repeated passes with an exponential moving average approach.
    3. Activation calibration (brevitas calibration_mode): every learned activation scale
       collects statistics over all frames with BN in eval() mode, then is finalised. The
       constant input scale is not touched.
    Frames (numpy or torch) are reshaped to the model's input shape when it has amchw_meta.
    Deterministic: same weights, frames and seed give the same model (CPU).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = as_model_input(model, frames)
    if x.shape[0] < 2:
        raise ValueError("calibrate needs at least two frames (BatchNorm batch statistics)")
    if isinstance(seed, torch.Generator):
        gen = seed
    else:
        gen = torch.Generator().manual_seed(int(seed))

    model.eval()
    randomize_bn_affine(model, gen)

    bns = [m for m in model.modules() if isinstance(m, _BN)]
    if bns:
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        try:
            with torch.no_grad(), quantization_status_manager(
                model, disable_act_quant=True, disable_bias_quant=True, is_training=False
            ):
                for xb in _batches(x, batch_size):
                    model(xb)
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
                m.eval()

    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for xb in _batches(x, batch_size):
            model(xb)
    return model.eval()
