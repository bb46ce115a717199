"""The image model: generated training images, training, ONNX export, evaluation; the OCR evaluation."""
