"""qdr_ros: the ROS 2 lifecycle node around qdr_core. Kept thin: every decision that does not need
ROS (parameters, encodings, keep-latest hand-off, statistics) lives in qdr_core and is tested there."""
