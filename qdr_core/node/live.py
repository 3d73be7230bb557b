"""Live bag replay through the real node, as seen from qdr_core: its options and the evaluator.

The replay itself needs ROS and lives in ``qdr_ros.live``; qdr_core never imports qdr_ros (the
layers go one way). ``qdr bag eval --live`` and ``qdr demo`` find it through the ``qdr.live``
entry-point group, which the package registers in setup.py (``evaluate_bag = qdr_ros.live:...``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from qdr_core.errors import BackendUnavailableError

ENTRY_POINT_GROUP = "qdr.live"


@dataclass
class LiveOptions:
    """Settings of a live replay.

    Args:
        rate_scale: replay speed relative to the recording (2.0 = twice as fast).
        backend / num_threads: passed to the node's parameters.
        warmup: frames sent (and awaited) before the measured replay; not counted.
        startup_timeout: seconds to wait for the node's lifecycle services.
        drain_timeout: seconds to wait for outstanding outputs after the last frame.
        log_dir: where the node's log and params file go (default: a temp folder).
        domain_id: ROS domain for the replay (default: a random private one).
    """

    rate_scale: float = 1.0
    backend: str = "auto"
    num_threads: int = 0
    warmup: int = 2
    startup_timeout: float = 90.0
    drain_timeout: float = 10.0
    log_dir: str | None = None
    domain_id: int | None = None
    max_frames: int | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)


def live_evaluator() -> Callable[..., tuple[dict[str, Any], Any]]:
    """``evaluate_bag_live(bag, model, input_topic, clean_topic, options, detector, grid_frames,
    progress)`` from the installed ROS side.

    Raises:
        BackendUnavailableError: no ROS side is installed, or ROS 2 cannot be imported here.
    """
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "evaluate_bag"]
    if not found:
        raise BackendUnavailableError(
            f"live replay needs the qdr_ros node (no '{ENTRY_POINT_GROUP}' entry point: reinstall the package)"
        )
    try:
        return found[0].load()
    except Exception as exc:  # ImportError, or a ROS install whose C libraries fail to load
        raise BackendUnavailableError(
            f"live replay needs ROS 2: rclpy / ROS 2 messages are not importable ({type(exc).__name__}: {exc})"
        ) from None
