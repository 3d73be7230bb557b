"""Frame sizes a model really computes: the one rule every layer shares (ROS-, torch- and numpy-free).

Each model states its size multiple (the EFM down-samples twice, so 4); runtimes pad a frame up to
it and crop the result, and MAC counts, ONNX trace samples and TensorRT profiles use the padded
size. It lives below ``models``, ``export`` and ``runtime`` so none of them imports another for it.
"""

from __future__ import annotations

#: The EFM down-samples twice (1/2, 1/4); an exported graph only accepts H, W that divide by 4.
DEFAULT_SIZE_MULTIPLE = 4


def pad_amounts(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Rows and columns to append so that both sides become multiples of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def round_up_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """``(h, w)`` rounded up to multiples of ``multiple``: the frame a model really computes."""
    ph, pw = pad_amounts(int(size[0]), int(size[1]), multiple)
    return int(size[0]) + ph, int(size[1]) + pw
