"""Camera recordings: make a rosbag2 of degraded frames, read it back, evaluate a model on it."""
