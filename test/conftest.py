"""Shared test fixtures."""

from __future__ import annotations

import contextlib
import glob
import os

import pytest


def stale_fastdds_segments(shm_dir: str = "/dev/shm") -> list[str]:
    """Fast DDS shared-memory segments and port files that no live process has open or mapped.

    A ROS process that dies by a signal (the tests kill nodes on purpose) leaves its segments behind;
    Fast DDS then keeps trying to deliver into the dead ports and later runs lose most of their
    frames (measured: a second `make test` on the same machine lost 16 of 20 replayed frames).
    """
    files = glob.glob(os.path.join(shm_dir, "fastdds_*")) + glob.glob(os.path.join(shm_dir, "sem.fastdds_*"))
    if not files:
        return []
    in_use: set[str] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps") as maps:
                in_use.update(line.split(None, 5)[-1].strip() for line in maps if shm_dir in line)
            fd_dir = f"/proc/{pid}/fd"
            for fd in os.listdir(fd_dir):
                in_use.add(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            continue  # the process ended or is not ours to read
    return sorted(f for f in files if f not in in_use and f + " (deleted)" not in in_use)


def remove_stale_fastdds_segments() -> None:
    for path in stale_fastdds_segments():
        with contextlib.suppress(OSError):
            os.remove(path)


#: Test modules that start ROS processes; stale segments are dropped before each of their tests too,
#: since a node an earlier test killed (on purpose) leaves its segments in the same session.
ROS_MODULES = {"test_bag", "test_node_hostile", "test_ros_node", "test_ros_temporal"}


def pytest_configure(config):
    # Once, in the controller before any xdist worker starts: drop what earlier runs left behind.
    if not hasattr(config, "workerinput"):
        remove_stale_fastdds_segments()


def pytest_runtest_setup(item):
    if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in ROS_MODULES:
        remove_stale_fastdds_segments()


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one torch thread is fastest and keeps the suite quick on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """A tiny FP32 checkpoint (efm-t, small random head) to distil and quantize from."""
    import torch
    from torch import nn

    from qdr_core.models import build_model
    from qdr_core.models.checkpoint import model_payload, save_checkpoint

    torch.manual_seed(0)
    model = build_model("efm-t")
    nn.init.normal_(model.head.weight, std=0.02)
    path = tmp_path_factory.mktemp("teacher") / "fp32.pt"
    save_checkpoint(path, model_payload(model.eval(), "fp32", {"task": "noise", "preset": "efm-t"}))
    return path
