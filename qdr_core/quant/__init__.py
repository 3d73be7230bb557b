"""INT8 quantization following TensorRT's explicit-quantization rules (plain PyTorch, no torch.ao).

``fake_quant``: the LSQ fake quantizer; ``layers``: QuantConv2d / QuantAdd; ``convert``: FP32 EFM ->
QAT EFM; ``calibrate``: PTQ scale initialisation; ``qat_model``: QAT checkpoints and ``load_model``
(either kind of checkpoint). The QDR training loop (self-distillation + DFD + LMR) is
``qdr_core.train.qat``: training sits above quantization.
"""

from qdr_core.quant.calibrate import calibrate
from qdr_core.quant.convert import quantize_model, set_quantization, unique_quantizers
from qdr_core.quant.fake_quant import FakeQuantizer, fake_quantize
from qdr_core.quant.layers import QuantAdd, QuantConv2d
from qdr_core.quant.qat_model import load_model, load_qat_model, qat_payload

__all__ = [
    "FakeQuantizer",
    "QuantAdd",
    "QuantConv2d",
    "calibrate",
    "fake_quantize",
    "load_model",
    "load_qat_model",
    "qat_payload",
    "quantize_model",
    "set_quantization",
    "unique_quantizers",
]
