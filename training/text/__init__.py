"""The text model: tensors, training, baseline, calibration, ONNX export, evaluation, model card; and the
conversation model."""
