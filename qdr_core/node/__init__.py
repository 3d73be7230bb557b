"""The restoration node's ROS-free half: the parameter table (``params``), opening the runtime
with its warm-up (``runtime``), the stream mechanics (``stream``) and the health report
(``health``). ``qdr_ros.restore_node`` keeps only ROS handles, messages, QoS and the lifecycle."""
