"""Lowerings to the integer IR: from Brevitas modules (lower.brevitas, needs torch) and from
QONNX files (lower.qonnx, onnx + numpy only); both share lower.common.

Import the Brevitas lowering explicitly (`from amchw.lower.brevitas import lower`): it needs torch.
"""
