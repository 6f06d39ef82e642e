"""Model compression: magnitude pruning (unstructured and N:M) and product quantization of a
fully connected layer without training; Net-Trim (convex layer-wise pruning by ADMM);
knowledge-distillation losses. Each method's entry for the command line and report recipes is
in `registry` (one module per method in `methods`).

The names below load their module (and torch) on first use, so that the command line can read
amchw.compress.defaults, registry and methods without importing torch."""

from importlib import import_module

_HOME = {"kd_loss": "distill", "NetTrimResult": "nettrim", "net_trim": "nettrim",
         "net_trim_layer": "nettrim", "product_quantize": "pq", "PruneError": "errors",
         "magnitude_prune": "prune"}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
