"""Peers on the same frames: Zero-DCE (learned, low-light) and classical OpenCV baselines.

Each peer is an object with ``infer(HxWx3 float32 RGB in [0, 1]) -> same`` so that
``qdr_core.evaluate.evaluate_runtime`` scores it exactly as it scores a qdr runtime: the same
seeded degradations of the same held-out photos, the same PSNR / SSIM code.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from qdr_core.errors import BackendUnavailableError

# -- classical baselines ------------------------------------------------------------------------------


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def adaptive_gamma(rgb: np.ndarray, target: float = 0.45) -> np.ndarray:
    """Global gamma chosen so the mean brightness maps to ``target`` (the simplest low-light fix)."""
    mean = float(np.clip(rgb.mean(), 1e-4, 0.99))
    gamma = float(np.clip(np.log(target) / np.log(mean), 0.1, 1.0))
    return np.power(np.clip(rgb, 0, 1), gamma, dtype=np.float32)


def clahe(rgb: np.ndarray, clip_limit: float = 3.0, tiles: int = 8) -> np.ndarray:
    """CLAHE on the L channel of Lab (contrast-limited adaptive histogram equalisation)."""
    lab = cv2.cvtColor(_to_u8(rgb), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32) / 255.0


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide) with box filters; opencv-contrib is not a dependency."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, size)

    mean_i, mean_p = box(guide), box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def dark_channel_prior(
    rgb: np.ndarray,
    patch: int = 15,
    omega: float = 0.95,
    t0: float = 0.1,
    radius: int = 40,
    eps: float = 1e-3,
) -> np.ndarray:
    """Single-image dehazing by the dark channel prior (He, Sun, Tang, CVPR 2009) with guided-filter
    transmission refinement."""
    img = np.clip(rgb, 0, 1).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(img.min(axis=2), kernel)
    # Atmospheric light: the brightest input pixel among the 0.1 % haziest (brightest dark channel).
    n = max(1, dark.size // 1000)
    idx = np.argpartition(dark.ravel(), -n)[-n:]
    flat = img.reshape(-1, 3)
    airlight = flat[idx[np.argmax(flat[idx].sum(axis=1))]]
    transmission = 1.0 - omega * cv2.erode((img / np.maximum(airlight, 1e-3)).min(axis=2), kernel)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    transmission = _guided_filter(grey, transmission.astype(np.float32), radius, eps)
    t = np.maximum(transmission, t0)[..., None]
    return np.clip((img - airlight) / t + airlight, 0, 1).astype(np.float32)


def median_derain(rgb: np.ndarray, ksize: int = 5) -> np.ndarray:
    """Median filter: removes thin bright streaks at the cost of texture (a classical de-rain floor)."""
    return cv2.medianBlur(_to_u8(rgb), ksize).astype(np.float32) / 255.0


def nl_means(rgb: np.ndarray, h: float = 10.0) -> np.ndarray:
    """OpenCV fastNlMeansDenoisingColored (non-local means, 7x7 template, 21x21 search)."""
    out = cv2.fastNlMeansDenoisingColored(_to_u8(rgb), None, h, h, 7, 21)
    return out.astype(np.float32) / 255.0


@dataclass
class FunctionPeer:
    """A method behind the runtime interface (``evaluate_runtime`` duck-types it)."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]

    def infer(self, image: np.ndarray) -> np.ndarray:
        return np.clip(self.fn(np.asarray(image, dtype=np.float32)), 0, 1).astype(np.float32)

    def close(self) -> None:
        pass


CLASSICAL: dict[str, list[tuple[str, Callable[[np.ndarray], np.ndarray]]]] = {
    "lowlight": [("gamma (adaptive)", adaptive_gamma), ("CLAHE (Lab L)", clahe)],
    "haze": [("dark channel prior", dark_channel_prior)],
    "rain": [("median 5x5", median_derain)],
    "noise": [("fastNlMeansDenoisingColored", nl_means)],
}


# -- Zero-DCE (neuro-low-light) ----------------------------------------------------------------------


def load_zero_dce() -> Any:
    """The packaged Zero-DCE++ network (torch ``nn.Module``, eval mode) with its shipped weights,
    whose forward gives the enhanced image only. Importing ``neuro_low_light`` itself imports
    torchvision (its CLI module), which qdr does not install, so only its folder is located here."""
    import torch

    spec = importlib.util.find_spec("neuro_low_light")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            "Zero-DCE peer needs the neuro-low-light package: pip install --no-deps neuro-low-light==0.1.0"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    spec = importlib.util.spec_from_file_location("_qdr_bench_zero_dce_model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ZeroDCEPP()
    state = torch.load(folder / "weights" / "best_model.pth", map_location="cpu", weights_only=True)
    net.load_state_dict(state["model_state_dict"])

    class ImageOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)[0]

    return ImageOnly(net).eval()


def torch_peer(name: str, module: Any, threads: int) -> FunctionPeer:
    """A torch module that maps NCHW RGB [0, 1] to the same, behind the runtime interface."""
    import torch

    torch.set_num_threads(threads)

    @torch.inference_mode()
    def fn(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        return module(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)

    return FunctionPeer(name, fn)


def export_zero_dce(path: str | os.PathLike) -> Path:
    """FP32 ONNX of the packaged Zero-DCE (dynamic H, W) for onnxruntime; written once."""
    path = Path(path)
    if path.is_file():
        return path
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            load_zero_dce(),
            (torch.rand(1, 3, 64, 64),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dynamic, "output": dynamic},
            opset_version=17,
            dynamo=False,
        )
    return path


# -- quality and speed ---------------------------------------------------------------------------------


def eval_images(n_images: int, max_side: int) -> tuple[str, list[str], list[np.ndarray]]:
    """Held-out photos (``photos("eval")``), else the demo frames when the photo packages are missing."""
    from qdr_core.errors import DataError

    try:
        from qdr_core.data.sources import photos

        chosen = photos("eval")[:n_images]
        return "split:eval", [p.name for p in chosen], [p.load(max_side) for p in chosen]
    except DataError:
        from qdr_core.bench.frames import DEMO_DIR
        from qdr_core.data.imageio import read_rgb

        paths = sorted(DEMO_DIR.glob("*.jpg"))[:n_images]
        return f"demo:{DEMO_DIR}", [p.name for p in paths], [read_rgb(p, max_side=max_side) for p in paths]


def quality(runtime: Any, task: str, names: list[str], images: list[np.ndarray]) -> dict[str, Any]:
    """``evaluate_runtime``'s figures (seed 0: every method sees the same degraded frames)."""
    from qdr_core.evaluate import evaluate_runtime

    r = evaluate_runtime(runtime, task, images, names, 0)
    keys = ("psnr_input", "psnr_output", "ssim_input", "ssim_output", "psnr_gain", "n_images")
    return {k: r[k] for k in keys}
