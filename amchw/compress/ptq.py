"""Post-training quantization (the compression seed's third row of Table III: a model trained
in FP32, then quantized to INT8 with calibration data, no retraining).

As the seed's procedure describes (MATLAB's quantizer with a calibration datastore; the
quantization model of Nagel et al.'s white paper, which it follows): weights and activations
become 8-bit integers, each with its own scale; biases stay at 32 bits with the scale
s_in * s_w; calibration data fixes the activations' dynamic ranges. In amchw the float-trained
Brevitas model (`amchw train --float-only`) already carries every quantizer, switched off:

1. every quantizer is switched on (amchw.train.set_quantization);
2. weight scales come from the trained float weights (the weight quantizers compute them from
   the weights' statistics: per-tensor or per-channel max |w|, or its power of two);
3. every activation scale initialised from runtime statistics is reset (step counter 0,
   statistics buffer and value 1, as a fresh quantizer) and collected over the calibration
   frames in Brevitas' calibration mode (quantization off while the statistics of the float
   activations are gathered, then folded into the scales), BatchNorm kept in eval mode with
   its trained statistics;
4. biases are Int32Bias (q_b = round(b / (s_in s_w))), as every amchw model.

The calibration frames are held out from the weights' training: the checkpoint's validation
split."""

from __future__ import annotations

import torch
from torch import nn


def reset_runtime_scales(model: nn.Module) -> int:
    """Return every activation scale initialised from runtime statistics to its unset state
    (step counter 0, statistics buffer and scale value 1); the count reset."""
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(getattr(m, "counter", None), int) and hasattr(m, "buffer") and \
                    hasattr(m, "value"):
                m.counter = 0
                m.buffer.fill_(1.0)
                m.value.fill_(1.0)
                n += 1
    return n


def post_training_quantize(model: nn.Module, frames: torch.Tensor,
                           batch_size: int = 256) -> nn.Module:
    """Quantize a float-trained model in place from calibration `frames` (steps 1-4 of the
    module docstring); returns it in eval mode."""
    from amchw.models.calibrate import _batches, calibration_mode
    from amchw.train import set_quantization

    if frames.shape[0] < 1:
        raise ValueError("post-training quantization needs calibration frames, got none")
    set_quantization(model, True)
    reset_runtime_scales(model)
    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for xb in _batches(frames, batch_size):
            model(xb)
    return model.eval()
