"""``qdr_restore``: a lifecycle node that restores camera frames (low light, haze, rain, noise).

Subscribes ``image_raw`` (or ``image_raw/compressed``) and ``camera_info``; publishes
``restored/image_raw`` and ``restored/camera_info`` with the input frame's header. Only ROS lives
here (handles, messages, QoS, the lifecycle); the parameter table, opening the runtime, the stream
mechanics and the health report are ``qdr_core.node``. See docs/ros_node.md.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.logging import LoggingSeverity
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.time import Time
from rclpy.timer import Timer
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from qdr_core.errors import ConfigError, ImageFormatError
from qdr_core.frame_restore import restore_message
from qdr_core.image_encodings import Encoded
from qdr_core.node.frame_size import FrameRejected, check_size
from qdr_core.node.health import StreamStats
from qdr_core.node.model_slot import ModelSlot, switch_model
from qdr_core.node.params import PARAMETERS, NodeParams, model_change, parse_qos, runtime_change_error
from qdr_core.node.runtime import Cancelled, describe, open_runtime
from qdr_core.node.stream import KeepLatestWorker, RateLimiter
from qdr_core.node.temporal import TemporalStreams
from qdr_ros.inputs import Inputs
from qdr_ros.messages import descriptor, diagnostic_status, image_msg, publish_diagnostics, restamped_info
from qdr_ros.qos import to_profile

NODE_NAME = "qdr_restore"


class RestoreNode(LifecycleNode):
    """The restoration lifecycle node; handles are created in a transition, freed in its mirror."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        for param in PARAMETERS:
            self.declare_parameter(param.name, param.default, descriptor(param))
        self._params: NodeParams | None = None
        self._slot = ModelSlot()  # the current model; swapped by a runtime task/model change
        self._frames_group = MutuallyExclusiveCallbackGroup()  # see main()
        self._topic = ""  # the subscribed image topic: one temporal stream
        self._image_pub: Publisher | None = None
        self._info_pub: Publisher | None = None
        self._diag_pub: Publisher | None = None
        self._diag_timer: Timer | None = None
        self._qos_timer: Timer | None = None
        self._inputs: Inputs | None = None
        self._worker: KeepLatestWorker | None = None
        self._latest_info: CameraInfo | None = None
        self._temporal: TemporalStreams | None = None  # per-stream state of a streaming model
        self._reset_srv: Any = None
        self._state = "unconfigured"
        self._limiter = RateLimiter()
        self._stats = StreamStats()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.get_parameter("autostart").value:
            # After construction, from the executor: a transition inside __init__ would run before
            # the caller could add the node to an executor.
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = NodeParams.from_mapping({p.name: self.get_parameter(p.name).value for p in PARAMETERS})
            opened = open_runtime(params, cancelled=lambda: not self.context.ok())
        except Cancelled:  # shutting down: rclpy's line that the transition cannot complete is noise
            self.get_logger().set_level(LoggingSeverity.FATAL)
            return TransitionCallbackReturn.FAILURE
        except ConfigError as exc:
            self.get_logger().error(f"configure failed: {describe(exc)}")
            return TransitionCallbackReturn.FAILURE
        self._params = params
        self._slot.swap(opened.runtime, str(opened.model_file))
        self._temporal = TemporalStreams(opened.runtime, opened.temporal, params.temporal_max_gap)
        self._reset_srv = self.create_service(
            Trigger, "~/reset", lambda q, r: self._temporal.handle_reset(q, r)
        )
        self._limiter.max_fps = params.max_fps
        self._stats = StreamStats()
        out_qos = to_profile(parse_qos(params.output_qos, allow_auto=False))
        self._image_pub = self.create_lifecycle_publisher(Image, "restored/image_raw", out_qos)
        self._info_pub = self.create_lifecycle_publisher(CameraInfo, "restored/camera_info", out_qos)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(params.diagnostics_period, self._publish_diagnostics)
        self._state = "inactive"
        self.get_logger().info(
            f"configured: {opened.runtime.name} backend, model {opened.model_file}, temporal state "
            f"{'on' if opened.temporal else 'off'} ({params.warmup_frames} warm-up frames in {opened.warmup_s:.2f} s)"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_activate(state)  # enables the lifecycle publishers
        # Two stages: restore on one thread, publish on another, so the model never waits on a publish.
        workers = self._params.parallel_frames if self._params else 1
        self._worker = KeepLatestWorker(self._process, self._on_worker_error, "qdr-restore-worker",
                                        then=self._publish, workers=workers)  # fmt: skip
        self._worker.start()
        keep_info = lambda m: setattr(self, "_latest_info", m)  # noqa: E731
        self._inputs = Inputs(self, self._params, self._on_image, keep_info, self._frames_group)
        self._inputs.subscribe()
        self._qos_timer = self.create_timer(1.0, self._inputs.recheck)
        self._state, topic = "active", self._inputs.image_topic
        self._topic = topic  # one temporal stream per input topic
        self.get_logger().info(f"active: {topic} ({self._inputs.reliability[topic]}) -> restored/image_raw")
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy("_inputs", Inputs.unsubscribe)
        self._destroy("_qos_timer", self.destroy_timer)
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
        self._destroy("_inputs", Inputs.unsubscribe)
        self._destroy("_qos_timer", self.destroy_timer)
        self._destroy("_diag_timer", self.destroy_timer)
        self._stop_worker()
        self._destroy("_image_pub", self.destroy_lifecycle_publisher)
        self._destroy("_info_pub", self.destroy_lifecycle_publisher)
        self._destroy("_diag_pub", self.destroy_publisher)
        self._destroy("_reset_srv", self.destroy_service)
        self._slot.swap(None)
        self._latest_info = self._temporal = None
        self._params = None  # parameters are read again at the next configure
        self._state = "unconfigured"

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if not worker.stop():
            self.get_logger().warning("inference worker did not stop within 5 s")
        self._stats.counters.dropped += worker.dropped + worker.late

    def _autostart(self) -> None:
        self._destroy("_autostart_timer", self.destroy_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _destroy(self, attr: str, destroy: Any) -> None:
        handle = getattr(self, attr, None)
        if handle is not None:
            destroy(handle)
            setattr(self, attr, None)

    def _on_image(self, msg: Image | CompressedImage, lost: int) -> None:
        now, counters, params = time.monotonic(), self._stats.counters, self._params
        self._stats.record_received(now, lost)
        if params is None:
            return
        try:
            check_size(msg, params.max_input_pixels)
        except FrameRejected as exc:
            self._reject(exc.reason, str(exc))
            return
        if not self._limiter.admit(now):
            counters.throttled += 1
            return
        worker = self._worker
        if worker is not None:
            worker.submit((msg, now))

    def _reject(self, reason: str, message: str) -> None:
        self._stats.counters.reject(reason)
        self.get_logger().error(f"rejected frame: {message}", throttle_duration_sec=5.0)

    def _process(self, item: tuple[Image | CompressedImage, float]) -> tuple[Any, Encoded, float] | None:
        """Stage 1 (inference thread): the restored frame, or None for a rejected one."""
        msg, received = item
        with self._slot.use() as runtime:
            temporal = self._temporal  # follows the model: rebuilt when a runtime change swaps it
            if runtime is None or temporal is None or self._image_pub is None or self._params is None:
                return None
            # A frame that took the old model during a swap is restored by it as a still.
            run = temporal.for_message(self._topic, msg) if temporal.runtime is runtime else runtime
            try:
                encoded = restore_message(run, msg, self._params.output_encoding)
            except ImageFormatError as exc:
                self._reject("malformed", str(exc))
                return None
        return msg.header, encoded, received

    def _publish(self, result: tuple[Any, Encoded, float]) -> None:
        """Stage 2 (publishing thread): restored image + camera_info with the input's header."""
        header, encoded, received = result
        image_pub, info_pub, info = self._image_pub, self._info_pub, self._latest_info
        if image_pub is None or not self.context.ok():
            return
        image_pub.publish(image_msg(encoded, header))
        if info is not None and info_pub is not None:
            info_pub.publish(restamped_info(info, header))
        stamp = Time.from_msg(header.stamp, clock_type=self.get_clock().clock_type)
        self._stats.record_published(received, (self.get_clock().now() - stamp).nanoseconds * 1e-9)

    def _on_worker_error(self, item: Any, exc: BaseException) -> None:
        if not self.context.ok():
            return  # shutting down: a publish on a closed context is not a failed frame
        self._stats.counters.failed += 1
        self.get_logger().error(f"frame failed: {describe(exc)}", throttle_duration_sec=5.0)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        ours = {p.name: p.value for p in params if p.name in NodeParams.names()}
        if self._params is None or not ours:
            return SetParametersResult(successful=True)  # read and validated at configure
        reason = runtime_change_error(ours, self._state)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        try:
            updated = self._params.with_changes(**ours)
            if model_change(self._params, updated):  # loaded beside the old model, which keeps restoring
                opened = switch_model(self._slot, updated, cancelled=lambda: not self.context.ok())
                self._temporal = TemporalStreams(opened.runtime, opened.temporal, updated.temporal_max_gap)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=describe(exc))
        self._limiter.max_fps = updated.max_fps
        self._params = updated
        changes = ", ".join(f"{name}={getattr(updated, name)}" for name in ours)
        self.get_logger().info(f"updated {changes} while {self._state} (model {self._slot.model_file})")
        return SetParametersResult(successful=True)

    def diagnostics_status(self) -> DiagnosticStatus:
        worker, params, runtime, inputs = self._worker, self._params, self._slot.runtime, self._inputs
        topic = inputs.image_topic if inputs is not None else ""
        reliability = ",".join(sorted(set(inputs.reliability.values()))) if inputs is not None else ""
        pending = worker.dropped + worker.late if worker is not None else 0
        report = self._stats.report(
            self._state, params, pending, runtime, self._slot.model_file, topic, reliability, self._temporal
        )
        hardware = runtime.name if runtime is not None else "none"
        return diagnostic_status(report, f"{self.get_name()}: restoration", hardware)

    def _publish_diagnostics(self) -> None:
        pub = self._diag_pub
        if pub is None or not self.context.ok():
            return
        publish_diagnostics(pub, self.diagnostics_status(), self.get_clock().now().to_msg(), self.context)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Entry point of ``restore_node``; Ctrl-C and SIGTERM end it cleanly with status 0, at once
    from any state (a configure in progress is abandoned)."""
    # Installed before rclpy.init, whose own handler shuts the context down and then calls this one:
    # SIGTERM then interrupts the main thread like Ctrl-C, also inside a long configure.
    signal.signal(signal.SIGTERM, _interrupt)
    rclpy.init(args=args)
    node: RestoreNode | None = None
    # Two threads: frames (own callback group) keep flowing while a parameter callback loads a model.
    executor = MultiThreadedExecutor(num_threads=2)
    try:
        node = RestoreNode()
        rclpy.spin(node, executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown(timeout_sec=5.0)  # a configure in progress sees the shutdown and gives up
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
