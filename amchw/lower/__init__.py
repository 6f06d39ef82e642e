"""Lowerings to the integer IR (from Brevitas modules; from QONNX in a later issue).

Import the Brevitas lowering explicitly (`from amchw.lower.brevitas import lower`): it needs torch.
"""
