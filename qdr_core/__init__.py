"""qdr_core: ROS-free image restoration for edge cameras (models, data, training, INT8, runtimes)."""

__version__ = "0.1.0"
