"""Models: the Edge-Friendly Model (EFM) with Learnable Degradation Gating (LDG)."""

from qdr_core.models.efm import DEFAULT_PRESET, EFM, PRESETS, EFMConfig, build_model, preset_config

__all__ = ["DEFAULT_PRESET", "EFM", "PRESETS", "EFMConfig", "build_model", "preset_config"]
