"""Model compression without training: magnitude pruning (unstructured and N:M) and product
quantization of a fully connected layer."""

from .pq import product_quantize
from .prune import PruneError, magnitude_prune

__all__ = ["PruneError", "magnitude_prune", "product_quantize"]
