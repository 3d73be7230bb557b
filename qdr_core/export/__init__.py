"""Exporters: FP32 ONNX, TensorRT-style QDQ ONNX, onnxruntime INT8 ONNX."""
