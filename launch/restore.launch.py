"""Launch qdr_restore as a lifecycle node that configures and activates itself.

    ros2 launch qdr_ros restore.launch.py task:=haze backend:=onnxruntime \
        namespace:=front input_topic:=/camera/image_raw output_topic:=/camera/restored

Launch arguments left empty keep the value in ``params_file`` (config/restore.yaml by default).
Auto-start uses launch_ros event handlers, which behave the same on Humble and Jazzy: configure is
emitted at start, and activate once the node has gone configuring -> inactive (only that
transition, so a later manual deactivate is not undone).
"""

from __future__ import annotations

import os

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchContext, LaunchDescription

PACKAGE = "qdr_ros"

# Launch-only arguments: name -> (default, description).
ARGUMENTS: dict[str, tuple[str, str]] = {
    "params_file": ("", "Parameters YAML (default: the package's config/restore.yaml)"),
    "namespace": ("", "Namespace of the node and its relative topics"),
    "input_topic": ("image_raw", "Camera image topic"),
    "camera_info_topic": ("camera_info", "Camera info topic"),
    "output_topic": ("restored/image_raw", "Restored image topic"),
    "output_camera_info_topic": ("restored/camera_info", "Restored camera info topic"),
    "autostart": ("true", "Configure and activate the node automatically"),
    "log_level": ("info", "Node log level"),
}
# Node parameters a launch argument may override; empty (the default) keeps the params file's value.
OVERRIDABLE = ("task", "model_variant", "model_path", "backend", "input_transport")


def declared_arguments() -> dict[str, tuple[str, str]]:
    """Every launch argument; the overriding ones described by the node's parameter table."""
    from qdr_core.node.params import BY_NAME

    overrides = {
        name: ("", f"Overrides params_file when set: {BY_NAME[name].description}") for name in OVERRIDABLE
    }
    return {**ARGUMENTS, **overrides}


def default_params_file() -> str:
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory(PACKAGE), "config", "restore.yaml")
    except Exception:  # not installed: running from the source tree
        return os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config", "restore.yaml"
        )


def _launch_setup(context: LaunchContext) -> list:
    value = {name: LaunchConfiguration(name).perform(context) for name in declared_arguments()}
    overrides = {name: value[name] for name in OVERRIDABLE if value[name]}
    node = LifecycleNode(
        package=PACKAGE,
        executable="restore_node",
        name="qdr_restore",
        namespace=value["namespace"],
        output="screen",
        parameters=[value["params_file"] or default_params_file(), overrides],
        remappings=[
            ("image_raw", value["input_topic"]),
            ("image_raw/compressed", value["input_topic"] + "/compressed"),
            ("camera_info", value["camera_info_topic"]),
            ("restored/image_raw", value["output_topic"]),
            ("restored/camera_info", value["output_camera_info_topic"]),
        ],
        arguments=["--ros-args", "--log-level", value["log_level"]],
    )
    actions: list = [node]
    if value["autostart"].lower() in ("true", "1", "yes"):
        configure = EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE
            )
        )
        activate = RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[
                    EmitEvent(
                        event=ChangeState(
                            lifecycle_node_matcher=matches_action(node),
                            transition_id=Transition.TRANSITION_ACTIVATE,
                        )
                    )
                ],
            )
        )
        actions += [activate, configure]
    return actions


def generate_launch_description() -> LaunchDescription:
    declared = [
        DeclareLaunchArgument(name, default_value=d, description=text)
        for name, (d, text) in declared_arguments().items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_launch_setup)])
