"""Distillation for QAT: DFD (bottleneck), decoder / output KD baselines, LMR loss balancing."""

from qdr_core.distill.lmr import BALANCE_MODES, FixedBalancer, GradNormBalancer, LMRBalancer, build_balancer
from qdr_core.distill.losses import (
    KD_MODES,
    DecoderFreeDistillation,
    FeatureKD,
    OutputKD,
    ProjectionAdapter,
    check_kd_mode,
)

__all__ = [
    "BALANCE_MODES",
    "KD_MODES",
    "DecoderFreeDistillation",
    "FeatureKD",
    "FixedBalancer",
    "GradNormBalancer",
    "LMRBalancer",
    "OutputKD",
    "ProjectionAdapter",
    "build_balancer",
    "check_kd_mode",
]
