"""ROS messages of the restoration node: parameter descriptors from the parameter table, restored
images, re-stamped camera info and the diagnostics status."""

from __future__ import annotations

import array
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from sensor_msgs.msg import CameraInfo, Image

from qdr_core.image_encodings import Encoded
from qdr_core.node.health import Report
from qdr_core.node.params import Param


def descriptor(param: Param) -> ParameterDescriptor:
    """The ROS descriptor of one row of the parameter table."""
    desc = ParameterDescriptor(description=param.description)
    # Numbers users write either way in YAML ("max_fps: 15" or "15.0"): typed by NodeParams instead.
    desc.dynamic_typing = param.kind is float
    if param.kind is int and param.low is not None and param.high is not None:
        desc.integer_range = [IntegerRange(from_value=int(param.low), to_value=int(param.high), step=1)]
    return desc


def image_msg(encoded: Encoded, header: Any) -> Image:
    out = Image(height=encoded.height, width=encoded.width, encoding=encoded.encoding,
                is_bigendian=int(encoded.is_bigendian), step=encoded.step)  # fmt: skip
    out.header = header
    data = array.array("B")
    data.frombytes(encoded.data)  # one copy; a list or bytes would be checked element by element
    out.data = data
    return out


def restamped_info(info: CameraInfo, header: Any) -> CameraInfo:
    out = CameraInfo()
    for name in CameraInfo.get_fields_and_field_types():
        setattr(out, name, getattr(info, name))
    out.header = header
    return out


def diagnostic_status(report: Report, name: str, hardware_id: str) -> DiagnosticStatus:
    status = DiagnosticStatus(name=name, message=report.message, hardware_id=hardware_id)
    status.level = bytes([report.level])  # one byte: OK 0, WARN 1, ERROR 2
    status.values = [KeyValue(key=k, value=v) for k, v in report.values.items()]
    return status


def publish_diagnostics(publisher: Any, status: DiagnosticStatus, stamp: Any, context: Any) -> None:
    """Publish one status on ``/diagnostics``. SIGTERM can shut ``context`` down between a caller's
    check and the publish: a timer firing during shutdown must not turn a clean exit into a traceback."""
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    try:
        publisher.publish(msg)
    except Exception:
        if context.ok():
            raise
