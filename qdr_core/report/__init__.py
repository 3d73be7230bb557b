"""Evaluation reports (``report.md`` + ``report.html``) for ``qdr bag eval`` and ``qdr demo``."""

from qdr_core.report.writer import gate_maps, write_report

__all__ = ["gate_maps", "write_report"]
