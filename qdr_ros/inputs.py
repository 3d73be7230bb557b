"""The node's input subscriptions: image (raw or compressed) and camera_info, with ``auto`` QoS that
follows the publishers, and the count of frames that never reached the callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from qdr_core.node.params import NodeParams, parse_qos
from qdr_core.node.stream import SequenceGaps
from qdr_ros.qos import match_publishers, to_profile


class Inputs:
    """Subscriptions of ``node`` for ``params``; ``on_image(msg, lost)`` gets each frame with the
    number of frames of its publisher that were lost before it (keep-last replacements included);
    both callbacks run in ``group`` (the node's default group when None)."""

    def __init__(
        self,
        node: Node,
        params: NodeParams,
        on_image: Callable[[Any, int], None],
        on_info: Callable[[CameraInfo], None],
        group: CallbackGroup | None = None,
    ) -> None:
        self.node, self.params, self.group = node, params, group
        self._on_image, self._on_info = on_image, on_info
        self.reliability: dict[str, str] = {}
        self._gaps = SequenceGaps()
        self._subs: list[Subscription] = []

    @property
    def image_topic(self) -> str:
        relative = "image_raw/compressed" if self.params.input_transport == "compressed" else "image_raw"
        return self.node.resolve_topic_name(relative)

    def _profile(self, topic: str):
        spec = parse_qos(self.params.input_qos, allow_auto=True)
        infos = self.node.get_publishers_info_by_topic(topic) if spec.reliability == "auto" else None
        reliability = match_publishers(infos) if infos is not None else None
        self.reliability[topic] = reliability or spec.reliability
        return to_profile(spec, reliability)

    def _image(self, msg: Image | CompressedImage, info: dict) -> None:
        publisher = bytes(info.get("publisher_gid", {}).get("data", b""))
        self._on_image(msg, self._gaps.observe(publisher, info.get("publication_sequence_number")))

    def subscribe(self) -> None:
        msg_type = CompressedImage if self.params.input_transport == "compressed" else Image
        self._gaps.reset()  # frames sent while nobody listened are not losses
        topic, info_topic = self.image_topic, self.node.resolve_topic_name("camera_info")
        self._subs = [
            self.node.create_subscription(
                msg_type, topic, self._image, self._profile(topic), callback_group=self.group
            ),
            self.node.create_subscription(
                CameraInfo, info_topic, self._on_info, self._profile(info_topic), callback_group=self.group
            ),
        ]

    def unsubscribe(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            self.node.destroy_subscription(sub)

    def recheck(self) -> None:
        """``auto`` input QoS follows the publishers: a best-effort camera that appears after
        activation would never match a reliable subscription."""
        if not self.node.context.ok():  # a timer firing while SIGTERM shuts the context down
            return
        if parse_qos(self.params.input_qos, allow_auto=True).reliability != "auto":
            return
        for topic in (self.image_topic, self.node.resolve_topic_name("camera_info")):
            infos = self.node.get_publishers_info_by_topic(topic)
            if infos and match_publishers(infos) != self.reliability.get(topic):
                self.node.get_logger().info(
                    f"{topic}: publishers now {match_publishers(infos)}; resubscribing"
                )
                self.unsubscribe()
                self.subscribe()
                return
