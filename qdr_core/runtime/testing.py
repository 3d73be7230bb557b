"""TEMPORARY alias: ``write_random_model`` moved to ``qdr_core.export.random_model``.

Only the node branch's tests and ``benchmarks/node_vs_runtime.py`` still import it from here;
delete this module once they import ``qdr_core.export.random_model``.
"""

from qdr_core.export.random_model import RandomModelFiles, write_conv_onnx, write_random_model

__all__ = ["RandomModelFiles", "write_conv_onnx", "write_random_model"]
