"""Backends that run a Transformer module's network instead of PyTorch (ONNX Runtime, OpenVINO)."""
