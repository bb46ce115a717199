"""The classification API and review store. ONNX Runtime only: serving never imports torch."""
