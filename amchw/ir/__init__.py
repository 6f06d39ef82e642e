"""The integer IR: typed integer tensors, ops with integer semantics, graphs, the validator,
the reference interpreter, a stable printer and save/load."""

from .graph import Graph, GraphBuilder, Node
from .formats import WeightFormat
from .ops import (GRU, OPS, Add, AvgPool, Concat, Conv, Dense, Dequantize, EntropyExit, GateMix,
                  Lut, MaxPool, Mul, Op, Quantize, Requant, Reshape, acc_type, fixed_multiplier,
                  fixed_offset)
from .types import FloatType, IRError, QType, Value
from .validate import validate

__all__ = ["Graph", "GraphBuilder", "Node", "OPS", "Add", "AvgPool", "Concat", "Conv", "Dense",
           "Dequantize", "EntropyExit", "GRU", "GateMix", "Lut", "MaxPool", "Mul", "Op",
           "Quantize", "Requant", "Reshape", "fixed_multiplier", "fixed_offset", "WeightFormat",
           "FloatType", "IRError", "QType", "Value", "acc_type", "validate"]
