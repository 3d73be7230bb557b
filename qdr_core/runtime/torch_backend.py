"""torch backend: runs a qdr ``.pt`` checkpoint (FP32 or QAT fake-quant) directly.

Meant for workstations and evaluation (the reference the ONNX exports are compared against), not
robots: it imports torch, which the ONNX and TensorRT backends never do.
"""

from __future__ import annotations

import os

import numpy as np

from qdr_core.errors import BackendUnavailableError
from qdr_core.runtime.base import Runtime
from qdr_core.runtime.contract import ModelSignature


class TorchRuntime(Runtime):
    """A qdr checkpoint run by PyTorch.

    Args:
        model_path: ``.pt`` checkpoint written by ``save_checkpoint`` (loaded with weights_only=True).
        num_threads: torch intra-op threads; 0 keeps torch's default. torch's thread count is
            process-wide, so a value here also affects other torch users in the process.
        device: torch device string (``cpu``, ``cuda``, ``cuda:1``).
    """

    name = "torch"
    # Inference under no_grad shares no mutable state between calls.
    concurrent = True

    def __init__(self, model_path: str | os.PathLike, num_threads: int = 0, device: str = "cpu") -> None:
        super().__init__(str(model_path), num_threads)
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError("backend 'torch' needs PyTorch: pip install torch") from exc
        from qdr_core.quant.qat_model import load_model

        self._torch = torch
        if self.num_threads > 0:
            torch.set_num_threads(self.num_threads)
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise BackendUnavailableError(f"backend 'torch': invalid device {device!r} ({exc})") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(
                "backend 'torch' on device 'cuda' needs a CUDA build of torch and a GPU"
            )
        self._attach(load_model(self.model_path).to(self.device))

    @classmethod
    def from_model(cls, model) -> TorchRuntime:
        """An in-memory model (a training loop's, an ablation's) behind the runtime interface, on
        the device its weights are on: scored with exactly the padding, cropping and clipping that
        a model file gets."""
        import torch

        runtime = cls.__new__(cls)
        Runtime.__init__(runtime, f"<in-memory {type(model).__name__}>")
        runtime._torch = torch
        runtime.device = next(model.parameters()).device
        runtime._attach(model)
        return runtime

    def _attach(self, model) -> None:
        self.model = model.eval()
        self.size_multiple = int(getattr(model, "size_multiple", self.size_multiple))
        self.context_cell = int(getattr(model, "context_cell", 0))
        if getattr(getattr(model, "cfg", None), "temporal", False):  # a streaming EFM
            self.streaming, self.state_stride = True, int(model.state_stride)
            self.state_channels = int(model.state_shape(1, 1, 1)[1])
            if model.cfg.aligned_state:
                self.metadata["state_align"] = "flow"
                self.state_fill = float(model.state_fill)
        # A module has no static shapes; the contract's probe frame checks what it returns.
        self.signature = ModelSignature(
            input_shape=(None, 3, None, None),
            output_shape=(None, 3, None, None),
            n_weights=sum(1 for _ in model.parameters()),
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch).to(self.device))
        if isinstance(out, tuple):  # models that also return features put the image first
            out = out[0]
        return out.float().cpu().numpy()

    def _run_state(self, batch: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.streaming:
            return super()._run_state(batch, state)
        torch = self._torch
        with torch.inference_mode():
            out, new_state = self.model(
                torch.from_numpy(batch).to(self.device), torch.from_numpy(state).to(self.device)
            )
        return out.float().cpu().numpy(), new_state.float().cpu().numpy()

    def _release(self) -> None:
        del self.model
