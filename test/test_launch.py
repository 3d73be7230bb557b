"""launch/restore.launch.py: built wherever launch_ros is installed; its syntax and arguments checked
everywhere (launch_ros has no pip wheel here)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "restore.launch.py"
EXPECTED_ARGS = {
    "params_file",
    "task",
    "model_variant",
    "model_path",
    "backend",
    "namespace",
    "input_topic",
    "camera_info_topic",
    "output_topic",
    "output_camera_info_topic",
    "autostart",
}


def _literal(name: str):
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if getattr(target, "id", "") == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in the launch file")


def test_launch_file_parses_and_declares_its_arguments():
    table, overridable = _literal("ARGUMENTS"), set(_literal("OVERRIDABLE"))
    assert set(table) | overridable >= EXPECTED_ARGS
    params = yaml.safe_load((REPO / "config" / "restore.yaml").read_text())["qdr_restore"]["ros__parameters"]
    assert overridable <= set(params)  # every override names a real parameter
    assert table["input_topic"][0] == "image_raw" and table["output_topic"][0] == "restored/image_raw"


def test_launch_description_builds():
    pytest.importorskip(
        "launch", reason="ROS 2 'launch' is not installed (no pip wheel; comes with a ROS distro)"
    )
    pytest.importorskip("launch_ros", reason="ROS 2 'launch_ros' is not installed (comes with a ROS distro)")
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    from launch import LaunchContext, LaunchDescription

    spec = importlib.util.spec_from_file_location("restore_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    declared = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert declared >= EXPECTED_ARGS
    context = LaunchContext()
    for name, (default, _) in module.declared_arguments().items():
        context.launch_configurations[name] = default
    context.launch_configurations["backend"] = "onnxruntime"
    setup = next(a for a in description.entities if isinstance(a, OpaqueFunction))
    actions = setup.execute(context)
    assert len(actions) == 3  # node, activate-on-inactive handler, configure event
