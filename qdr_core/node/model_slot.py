"""The node's current model, swappable while frames are being restored.

A runtime change of ``task``, ``model_variant`` or ``model_path`` loads the new model beside the
old one; ``swap`` then makes it current between frames. A frame that already took the old runtime
finishes with it, and the old runtime is closed when its last frame is done, so no frame ever runs
on a closed session and none waits for the swap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from qdr_core.errors import ConfigError
from qdr_core.node.params import NodeParams
from qdr_core.node.runtime import Cancelled, OpenedRuntime, open_runtime
from qdr_core.runtime import Runtime


class ModelSlot:
    """One current runtime (or none) and the number of frames using each runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Runtime | None = None
        self._model_file = ""
        self._users: dict[int, int] = {}
        self._retired: dict[int, Runtime] = {}

    @property
    def runtime(self) -> Runtime | None:
        return self._current

    @property
    def model_file(self) -> str:
        return self._model_file

    @contextmanager
    def use(self) -> Iterator[Runtime | None]:
        """The current runtime for one frame (None when there is none); a swap meanwhile closes the
        old runtime only after this frame is done with it."""
        with self._lock:
            runtime = self._current
            if runtime is not None:
                self._users[id(runtime)] = self._users.get(id(runtime), 0) + 1
        try:
            yield runtime
        finally:
            if runtime is not None:
                self._release(runtime)

    def _release(self, runtime: Runtime) -> None:
        with self._lock:
            left = self._users[id(runtime)] - 1
            if left:
                self._users[id(runtime)] = left
                return
            del self._users[id(runtime)]
            retired = self._retired.pop(id(runtime), None)
        if retired is not None:
            retired.close()

    def swap(self, runtime: Runtime | None, model_file: str = "") -> Runtime | None:
        """Make ``runtime`` current; the previous one is closed now if no frame uses it, else when
        its last frame is done. Returns the previous runtime (already closed or about to be)."""
        with self._lock:
            old, self._current, self._model_file = self._current, runtime, model_file if runtime else ""
            close_now = old is not None and old is not runtime and id(old) not in self._users
            if old is not None and old is not runtime and not close_now:
                self._retired[id(old)] = old
        if close_now:
            old.close()
        return old


def switch_model(
    slot: ModelSlot,
    params: NodeParams,
    search_roots: list[Path] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> OpenedRuntime:
    """Open and warm up ``params``' model while ``slot``'s model keeps restoring, then make it current.

    Raises:
        ConfigError: one line naming the model that was not loaded and the one kept.
    """
    try:
        opened = open_runtime(params, search_roots, cancelled)
    except Cancelled:
        raise ConfigError(f"{params.model_relpath} not loaded: shutting down") from None
    except ConfigError as exc:
        kept = slot.model_file or "no model"
        raise ConfigError(f"{params.model_relpath} not loaded, {kept} kept: {exc}") from None
    slot.swap(opened.runtime, str(opened.model_file))
    return opened
