"""QoS names (qdr_core.node.params.QosSpec) -> rclpy QoSProfile, and ``auto`` matching."""

from __future__ import annotations

from collections.abc import Iterable

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)

from qdr_core.node.params import QosSpec, auto_reliability

_RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "system_default": ReliabilityPolicy.SYSTEM_DEFAULT,
}


def to_profile(spec: QosSpec, reliability: str | None = None) -> QoSProfile:
    """The rclpy profile for ``spec``; ``reliability`` resolves an ``auto`` spec."""
    if spec.name == "SENSOR_DATA":
        return QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=qos_profile_sensor_data.depth,
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
    if spec.name == "SYSTEM_DEFAULT":
        return qos_profile_system_default
    chosen = reliability if spec.reliability == "auto" else spec.reliability
    if chosen not in _RELIABILITY:
        raise ValueError(f"QoS {spec.name}: unresolved reliability {chosen!r}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=spec.depth,
        reliability=_RELIABILITY[chosen],
        durability=DurabilityPolicy.VOLATILE,
    )


def publisher_reliabilities(infos: Iterable) -> list[str]:
    """Reliability names of ``Node.get_publishers_info_by_topic`` results."""
    names = []
    for info in infos:
        policy = info.qos_profile.reliability
        names.append("best_effort" if policy == ReliabilityPolicy.BEST_EFFORT else "reliable")
    return names


def match_publishers(infos: Iterable) -> str:
    return auto_reliability(publisher_reliabilities(infos))
