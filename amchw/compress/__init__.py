"""Model compression: magnitude pruning (unstructured and N:M) without training."""

from .prune import PruneError, magnitude_prune

__all__ = ["PruneError", "magnitude_prune"]
