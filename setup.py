"""qdr: decoder-free distilled INT8 image restoration for ROS 2.

One ament_python package (``qdr_ros``) carrying two Python packages:
``qdr_core`` (ROS-free: models, data, training, quantization, runtimes, CLI) and
``qdr_ros`` (the lifecycle node). ``colcon build`` on a robot and ``pip install -e .`` on a
workstation both use this file; ROS dependencies come from the distro (package.xml), never pip.
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "qdr_ros"
HERE = Path(__file__).parent


def _data_files() -> list[tuple[str, list[str]]]:
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml"))),
    ]
    # models/<task>/ and its variants (models/<task>/realistic/: opt-in; models/<task>/stream/: the
    # task's default where `temporal` allows it).
    for task_dir in sorted(glob("models/*/") + glob("models/*/*/")):
        shipped = sorted(glob(f"{task_dir}*.onnx") + glob(f"{task_dir}*.pt") + glob(f"{task_dir}*.md"))
        if shipped:
            files.append((f"share/{PACKAGE}/{task_dir.rstrip('/')}", shipped))
    return files


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time INT8 image restoration (low-light, haze, rain, noise) for ROS 2 cameras",
    long_description=(HERE / "README.md").read_text(encoding="utf-8")
    if (HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["qdr_core", "qdr_core.*", "qdr_ros", "qdr_ros.*"]),
    data_files=_data_files(),
    # Runtime needs only what the node needs on a robot: numpy, OpenCV, PyYAML, onnxruntime.
    # ROS packages (rclpy, sensor_msgs, ...) come from the distro and are declared in package.xml.
    install_requires=["numpy>=1.21", "pyyaml>=5.4", "onnxruntime>=1.16"],
    extras_require={
        # opencv: on a Jetson python3-opencv comes from apt (rosdep); pip users take the wheel.
        "opencv": ["opencv-python-headless>=4.8,<5"],
        "train": [
            "torch>=2.1",
            "onnx>=1.16",
            "onnxscript>=0.2",
            "torchmetrics>=1.3",
            "scikit-image>=0.22",
            "tqdm>=4.66",
            "matplotlib>=3.7",
        ],
        "eval": ["rosbags>=0.10", "pycocotools>=2.0.7", "scikit-image>=0.22", "matplotlib>=3.7"],
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.6", "import-linter>=2.16"],
    },
    zip_safe=True,
    maintainer="qdr developers",
    maintainer_email="qdr@example.org",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "qdr = qdr_core.cli:main",
            "restore_node = qdr_ros.restore_node:main",
        ],
        # The ROS side of `qdr bag eval --live` and `qdr demo`; qdr_core never imports qdr_ros.
        "qdr.live": ["evaluate_bag = qdr_ros.live:evaluate_bag_live"],
    },
)
