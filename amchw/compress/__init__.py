"""Model compression: magnitude pruning (unstructured and N:M) and product quantization of a
fully connected layer without training; Net-Trim (convex layer-wise pruning by ADMM);
knowledge-distillation losses."""

from .distill import kd_loss
from .nettrim import NetTrimResult, net_trim, net_trim_layer
from .pq import product_quantize
from .prune import PruneError, magnitude_prune

__all__ = [
    "NetTrimResult", "PruneError", "kd_loss", "magnitude_prune", "net_trim", "net_trim_layer",
    "product_quantize",
]
