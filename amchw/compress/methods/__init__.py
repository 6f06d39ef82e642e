"""The compression methods, one module each. Importing this package registers every one of them
in amchw.compress.registry.METHODS, in the order below (the report's order of recipe kinds):
a new method is a module here and its name in this import."""

from amchw.compress.registry import METHODS

from . import net_trim, pq, kd, dp, dq, imp, early_exit, ptq  # noqa: F401  (each registers)

__all__ = ["METHODS"]
