"""``qdr_restore``: a lifecycle node that restores camera frames (low light, haze, rain, noise).

Subscribes ``image_raw`` (or ``image_raw/compressed``) and ``camera_info``; publishes
``restored/image_raw`` and ``restored/camera_info`` with the input frame's header. Inference runs on
a worker thread fed by a one-frame mailbox: the newest frame wins and replaced frames are counted
as drops, so output latency never grows with a queue. See docs/ros_node.md.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from rclpy.time import Time
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from qdr_core.errors import ConfigError, ImageFormatError, QdrError
from qdr_core.frame_restore import restore_compressed, restore_raw
from qdr_core.image_encodings import Encoded
from qdr_core.node_params import RUNTIME_PARAMS, NodeParams, parse_qos, resolve_model_path, source_root
from qdr_core.runtime import Runtime, auto_backend, load_runtime
from qdr_core.stream import KeepLatestWorker, LatencyWindow, RateLimiter, RateMeter, StreamCounters
from qdr_ros.qos import match_publishers, to_profile

NODE_NAME = "qdr_restore"
PACKAGE = "qdr_ros"
WARMUP_SIZE = (480, 640)

_DESCRIPTIONS: dict[str, str] = {
    "model_path": "Model file (.onnx or .pt). Relative paths resolve against the package share "
    "directory, then the source tree. Empty: models/<task>/<model_variant>.onnx.",
    "task": "Shipped model to use when model_path is empty: lowlight, haze, rain, noise.",
    "model_variant": "Shipped model variant: int8_cpu (onnxruntime), int8_trt (TensorRT), fp32.",
    "backend": "auto | tensorrt | onnxruntime | torch. auto: TensorRT when importable with a GPU, "
    "else onnxruntime (.onnx); torch for .pt.",
    "engine_cache_dir": "TensorRT engine cache directory (empty: next to the model).",
    "num_threads": "CPU inference threads, 0 = backend default.",
    "parallel_frames": "Frames restored at once (onnxruntime, torch). 1: lowest latency. On an N-core "
    "CPU, N frames with num_threads 1 give the most frames per second, each frame no faster.",
    "input_qos": "auto (match the publishers' reliability) | SENSOR_DATA | SYSTEM_DEFAULT | DEFAULT | "
    "RELIABLE | BEST_EFFORT.",
    "output_qos": "SYSTEM_DEFAULT | SENSOR_DATA | DEFAULT | RELIABLE | BEST_EFFORT.",
    "max_fps": "Maximum frames restored per second, 0 = unlimited. Changeable while active.",
    "output_encoding": "same (the input's, rgb8 for YUV/Bayer) or rgb8, bgr8, rgba8, bgra8, mono8, "
    "mono16. Changeable while active.",
    "warmup_frames": "Inferences on a blank 640x480 frame during configure.",
    "input_transport": "raw (sensor_msgs/Image on image_raw) | compressed (image_raw/compressed).",
    "diagnostics_period": "Seconds between /diagnostics reports.",
    "trt_precision": "TensorRT build precision: auto | int8 | fp16 | fp32.",
    "dla_core": "TensorRT DLA core (Jetson), -1 = GPU.",
    "autostart": "Configure and activate at startup (for ros2 run without a lifecycle manager).",
}
_RANGES = {
    "num_threads": (0, 1024),
    "parallel_frames": (1, 16),
    "warmup_frames": (0, 1000),
    "dla_core": (-1, 16),
}
# Numbers users write either way in YAML ("max_fps: 15" or "15.0"): typed by NodeParams instead.
_DYNAMIC = {"max_fps", "diagnostics_period"}


def _share_dir() -> str | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return get_package_share_directory(PACKAGE)
    except (PackageNotFoundError, LookupError, OSError, ValueError):
        # OSError: no AMENT_PREFIX_PATH at all (a pip install, not a sourced ROS workspace).
        return None


def model_search_roots() -> list[str]:
    roots = [_share_dir(), str(source_root())]
    return [r for r in roots if r]


class RestoreNode(LifecycleNode):
    """The restoration lifecycle node; handles are created in a transition, freed in its mirror."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        defaults = NodeParams()
        for name in NodeParams.names():
            descriptor = ParameterDescriptor(description=_DESCRIPTIONS.get(name, ""))
            if name in _DYNAMIC:
                descriptor.dynamic_typing = True
            if name in _RANGES:
                low, high = _RANGES[name]
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
            self.declare_parameter(name, getattr(defaults, name), descriptor)

        self._params: NodeParams | None = None
        self._runtime: Runtime | None = None
        self._model_file: str = ""
        self._image_pub: Publisher | None = None
        self._info_pub: Publisher | None = None
        self._diag_pub: Publisher | None = None
        self._diag_timer: Timer | None = None
        self._qos_timer: Timer | None = None
        self._image_sub: Subscription | None = None
        self._info_sub: Subscription | None = None
        self._worker: KeepLatestWorker | None = None
        self._input_reliability: dict[str, str] = {}
        self._latest_info: CameraInfo | None = None
        self._state = "unconfigured"
        self._lock = threading.Lock()
        self._limiter = RateLimiter()
        self._reset_stats()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        if self.get_parameter("autostart").value:
            # After construction, from the executor: a transition inside __init__ would run before
            # the caller could add the node to an executor.
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # ----------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            values = {name: self.get_parameter(name).value for name in NodeParams.names()}
            params = NodeParams.from_mapping(values)
            model_file = resolve_model_path(params.model_relpath, model_search_roots())
            backend = auto_backend(model_file) if params.backend == "auto" else params.backend
            opts: dict[str, Any] = {}
            if backend == "tensorrt":
                opts = {"precision": params.trt_precision, "dla_core": params.dla_core}
            runtime = load_runtime(
                model_file,
                backend=backend,
                num_threads=params.num_threads,
                engine_cache_dir=params.engine_cache_dir or None,
                **opts,
            )
            if params.parallel_frames > 1 and not runtime.concurrent:
                runtime.close()
                raise ConfigError(
                    f"parallel_frames {params.parallel_frames} needs a backend that restores frames "
                    f"concurrently (onnxruntime, torch); {runtime.name} runs one at a time: set 1"
                )
        except QdrError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # an unexpected loader error must still say what happened
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE

        started = time.monotonic()
        try:
            # The 8-bit path camera frames take, so its buffers are warm too.
            blank = np.full((*WARMUP_SIZE, 3), 128, np.uint8)
            for _ in range(params.warmup_frames):
                runtime.infer_planes8(blank)
        except Exception as exc:
            runtime.close()
            self.get_logger().error(f"configure failed: warm-up inference raised {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE

        self._params, self._runtime, self._model_file = params, runtime, str(model_file)
        self._limiter.max_fps = params.max_fps
        self._reset_stats()
        out_qos = to_profile(parse_qos(params.output_qos, allow_auto=False))
        self._image_pub = self.create_lifecycle_publisher(Image, "restored/image_raw", out_qos)
        self._info_pub = self.create_lifecycle_publisher(CameraInfo, "restored/camera_info", out_qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(params.diagnostics_period, self._publish_diagnostics)
        self._state = "inactive"
        self.get_logger().info(
            f"configured: {runtime.name} backend, model {model_file} "
            f"({params.warmup_frames} warm-up frames in {time.monotonic() - started:.2f} s)"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        # Two stages: restore on one thread, publish on another, so the model never waits on a publish.
        self._worker = KeepLatestWorker(
            self._process,
            self._on_worker_error,
            name="qdr-restore-worker",
            then=self._publish,
            workers=self._params.parallel_frames if self._params else 1,
        )
        self._worker.start()
        self._subscribe()
        self._qos_timer = self.create_timer(1.0, self._recheck_qos)
        self._state = "active"
        topic = self._image_topic()
        self.get_logger().info(
            f"active: {topic} ({self._input_reliability.get(topic, '?')}) -> restored/image_raw"
        )
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._destroy_timer("_qos_timer")
        self._stop_worker()
        self._state = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in state {state.label}: releasing everything")
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Free every handle and the runtime; safe to call in any state and more than once."""
        self._unsubscribe()
        self._destroy_timer("_qos_timer")
        self._destroy_timer("_diag_timer")
        self._stop_worker()
        for attr in ("_image_pub", "_info_pub"):
            pub = getattr(self, attr)
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
                setattr(self, attr, None)
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
        self._latest_info = None
        self._params = None  # parameters are read again at the next configure
        self._state = "unconfigured"

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if not worker.stop():
            self.get_logger().warning("inference worker did not stop within 5 s")
        self._counters.dropped += worker.dropped + worker.late

    def _autostart(self) -> None:
        self._destroy_timer("_autostart_timer")
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # ----------------------------------------------------------------------------- topics

    def _image_topic(self) -> str:
        assert self._params is not None
        relative = "image_raw/compressed" if self._params.input_transport == "compressed" else "image_raw"
        return self.resolve_topic_name(relative)

    def _input_profile(self, topic: str):
        assert self._params is not None
        spec = parse_qos(self._params.input_qos, allow_auto=True)
        reliability = (
            match_publishers(self.get_publishers_info_by_topic(topic)) if spec.reliability == "auto" else None
        )
        self._input_reliability[topic] = reliability or spec.reliability
        return to_profile(spec, reliability)

    def _subscribe(self) -> None:
        assert self._params is not None
        image_topic = self._image_topic()
        msg_type = CompressedImage if self._params.input_transport == "compressed" else Image
        self._image_sub = self.create_subscription(
            msg_type, image_topic, self._on_image, self._input_profile(image_topic)
        )
        info_topic = self.resolve_topic_name("camera_info")
        self._info_sub = self.create_subscription(
            CameraInfo, info_topic, self._on_info, self._input_profile(info_topic)
        )

    def _unsubscribe(self) -> None:
        for attr in ("_image_sub", "_info_sub"):
            sub = getattr(self, attr)
            if sub is not None:
                self.destroy_subscription(sub)
                setattr(self, attr, None)

    def _recheck_qos(self) -> None:
        """``auto`` input QoS follows the publishers: a best-effort camera that appears after
        activation would never match a reliable subscription."""
        if not self.context.ok():  # a timer firing while SIGTERM shuts the context down
            return
        if self._params is None or parse_qos(self._params.input_qos, allow_auto=True).reliability != "auto":
            return
        for topic in (self._image_topic(), self.resolve_topic_name("camera_info")):
            infos = self.get_publishers_info_by_topic(topic)
            if infos and match_publishers(infos) != self._input_reliability.get(topic):
                self.get_logger().info(f"{topic}: publishers now {match_publishers(infos)}; resubscribing")
                self._unsubscribe()
                self._subscribe()
                return

    def _on_info(self, msg: CameraInfo) -> None:
        self._latest_info = msg

    def _on_image(self, msg: Image | CompressedImage) -> None:
        now = time.monotonic()
        self._counters.received += 1
        self._in_rate.tick(now)
        if not self._limiter.admit(now):
            self._counters.throttled += 1
            return
        worker = self._worker
        if worker is not None:
            worker.submit((msg, now))

    # ----------------------------------------------------------------------------- inference

    def _process(self, item: tuple[Image | CompressedImage, float]) -> tuple[Any, Encoded, float] | None:
        """Stage 1 (inference thread): the restored frame, or None for a rejected one."""
        msg, received = item
        with self._lock:
            runtime = self._runtime
        if runtime is None or self._image_pub is None or self._params is None:
            return None
        output_encoding = self._output_encoding
        try:
            if isinstance(msg, CompressedImage):
                encoded = restore_compressed(runtime, msg.format, msg.data, output_encoding)
            else:
                encoded = restore_raw(
                    runtime,
                    msg.height,
                    msg.width,
                    msg.encoding,
                    msg.step,
                    msg.data,
                    bool(msg.is_bigendian),
                    output_encoding,
                )
        except ImageFormatError as exc:
            self._counters.rejected += 1
            self.get_logger().error(f"rejected frame: {exc}", throttle_duration_sec=5.0)
            return None
        return msg.header, encoded, received

    def _publish(self, result: tuple[Any, Encoded, float]) -> None:
        """Stage 2 (publishing thread): restored image + camera_info with the input's header."""
        header, encoded, received = result
        image_pub, info_pub = self._image_pub, self._info_pub
        if image_pub is None:
            return
        image_pub.publish(self._to_image_msg(encoded, header))
        info = self._latest_info
        if info is not None and info_pub is not None:
            info_pub.publish(self._restamped_info(info, header))
        done = time.monotonic()
        self._counters.published += 1
        self._out_rate.tick(done)
        self._processing.add(done - received)
        stamp = Time.from_msg(header.stamp, clock_type=self.get_clock().clock_type)
        self._latency.add((self.get_clock().now() - stamp).nanoseconds * 1e-9)

    def _on_worker_error(self, item: Any, exc: BaseException) -> None:
        self._counters.failed += 1
        self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0)

    @staticmethod
    def _to_image_msg(encoded: Encoded, header: Any) -> Image:
        out = Image()
        out.header = header
        out.height, out.width = encoded.height, encoded.width
        out.encoding = encoded.encoding
        out.is_bigendian = int(encoded.is_bigendian)
        out.step = encoded.step
        data = array.array("B")
        data.frombytes(encoded.data)  # one copy; a list or bytes would be checked element by element
        out.data = data
        return out

    @staticmethod
    def _restamped_info(info: CameraInfo, header: Any) -> CameraInfo:
        out = CameraInfo()
        for field in CameraInfo.get_fields_and_field_types():
            setattr(out, field, getattr(info, field))
        out.header = header
        return out

    # ----------------------------------------------------------------------------- parameters

    @property
    def _output_encoding(self) -> str:
        return self._params.output_encoding if self._params is not None else "same"

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        ours = [p for p in params if p.name in NodeParams.names()]
        if self._params is None or not ours:
            return SetParametersResult(successful=True)  # read and validated at configure
        fixed = [p.name for p in ours if p.name not in RUNTIME_PARAMS]
        if fixed:
            reason = (
                f"{', '.join(fixed)} cannot change while the node is {self._state}: deactivate and "
                f"cleanup, set it, then configure again (changeable now: {', '.join(sorted(RUNTIME_PARAMS))})"
            )
            return SetParametersResult(successful=False, reason=reason)
        try:
            updated = self._params.with_changes(**{p.name: self._coerce(p) for p in ours})
        except (ConfigError, ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._limiter.max_fps = updated.max_fps
        self._params = updated
        self.get_logger().info(
            f"updated {', '.join(f'{p.name}={getattr(updated, p.name)}' for p in ours)} while {self._state}"
        )
        return SetParametersResult(successful=True)

    @staticmethod
    def _coerce(param: Parameter) -> Any:
        value = param.value
        if param.name == "max_fps":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"max_fps must be a number, got {value!r}")
            return float(value)
        return str(value)

    # ----------------------------------------------------------------------------- diagnostics

    def _reset_stats(self) -> None:
        self._counters = StreamCounters()
        self._in_rate = RateMeter()
        self._out_rate = RateMeter()
        self._latency = LatencyWindow()
        self._processing = LatencyWindow()
        self._last_report = StreamCounters()

    def diagnostics_status(self) -> DiagnosticStatus:
        counters = StreamCounters(**self._counters.as_dict())
        worker = self._worker
        if worker is not None:
            counters.dropped += worker.dropped + worker.late  # the running worker's are not folded in yet
        in_rate, out_rate = self._in_rate.rate(), self._out_rate.rate()
        status = DiagnosticStatus()
        status.name = f"{self.get_name()}: restoration"
        status.hardware_id = self._runtime.name if self._runtime is not None else "none"
        problems = []
        level = 0  # DiagnosticStatus levels are one byte: OK 0, WARN 1, ERROR 2
        if counters.failed > self._last_report.failed:
            level = 2
            problems.append("inference failing")
        if counters.rejected > self._last_report.rejected:
            level = max(level, 1)
            problems.append("malformed frames rejected")
        if self._state == "active" and in_rate == 0.0:
            level = max(level, 1)
            problems.append("no input frames")
        status.level = bytes([level])
        status.message = "; ".join(problems) or f"restoring at {out_rate:.1f} fps"
        self._last_report = counters

        def ms(window: LatencyWindow, q: float) -> str:
            value = window.percentile(q)
            return "nan" if value is None else f"{value * 1e3:.2f}"

        params, runtime = self._params, self._runtime
        metadata = dict(runtime.metadata) if runtime is not None else {}
        model_name = ""
        if self._model_file:
            model = Path(self._model_file)
            model_name = metadata.get("name") or f"{model.parent.name}/{model.stem}"
        values = {
            "state": self._state,
            "backend": runtime.name if runtime is not None else "",
            "model": model_name,
            "model_path": self._model_file,
            "input_topic": self._image_topic() if params is not None else "",
            "input_reliability": ",".join(sorted(set(self._input_reliability.values()))),
            "input_rate_hz": f"{in_rate:.2f}",
            "output_rate_hz": f"{out_rate:.2f}",
            **{f"frames_{k}": str(v) for k, v in counters.as_dict().items()},
            "latency_p50_ms": ms(self._latency, 50),
            "latency_p95_ms": ms(self._latency, 95),
            "processing_p50_ms": ms(self._processing, 50),
            "processing_p95_ms": ms(self._processing, 95),
            "max_fps": f"{params.max_fps:g}" if params is not None else "",
            "output_encoding": self._output_encoding,
        }
        values.update({f"model_meta.{k}": str(v) for k, v in sorted(metadata.items())[:12]})
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _publish_diagnostics(self) -> None:
        pub = self._diag_pub
        if pub is None or not self.context.ok():
            return
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics_status()]
        try:
            pub.publish(msg)
        except Exception:
            # SIGTERM can shut the context down between the check above and the publish: a
            # timer firing during shutdown must not turn a clean exit into a traceback.
            if self.context.ok():
                raise

    def _destroy_timer(self, attr: str) -> None:
        timer = getattr(self, attr, None)
        if timer is not None:
            self.destroy_timer(timer)
            setattr(self, attr, None)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``restore_node``; Ctrl-C and SIGTERM end it cleanly with status 0."""
    rclpy.init(args=args)
    node: RestoreNode | None = None
    try:
        node = RestoreNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
