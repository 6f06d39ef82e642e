"""Model compression: magnitude pruning (unstructured and N:M) and product quantization of a
fully connected layer without training; knowledge-distillation losses."""

from .distill import kd_loss
from .pq import product_quantize
from .prune import PruneError, magnitude_prune

__all__ = ["PruneError", "kd_loss", "magnitude_prune", "product_quantize"]
