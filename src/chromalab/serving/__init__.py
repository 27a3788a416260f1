"""Serving users: which model to load (model_choice), the released model (release), logging a
model to MLflow again (relog), and export to TorchScript or ONNX."""
