"""Downstream person detection on clean, degraded and restored frames (OpenCV DNN SSDLite, HOG)."""

from qdr_core.detect.detectors import DETECTORS, Detections, HogDetector, SSDLiteDetector, build_detector
from qdr_core.detect.metrics import REFERENCE_SCORE, detection_ap

__all__ = [
    "DETECTORS",
    "REFERENCE_SCORE",
    "Detections",
    "HogDetector",
    "SSDLiteDetector",
    "build_detector",
    "detection_ap",
]
