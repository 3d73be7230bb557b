"""Bench output: the tables printed to the terminal, the JSON file and the PNG figure."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def table(headers: list[str], rows: list[list[Any]], markdown: bool = False) -> str:
    """Aligned text, or (``markdown``) a GitHub table for docs/performance.md."""
    cells = [headers, *[[_fmt(c) if not isinstance(c, str) else c for c in r] for r in rows]]
    if markdown:
        lines = ["| " + " | ".join(str(c) for c in r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in headers) + "|")
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


#: A table column: its header and the row's key, or how a row (a dict of the result) gives its cell.
Column = tuple[str, str | Callable[[dict[str, Any]], Any]]


def _size(row: dict[str, Any]) -> str:
    return f"{row['width']}x{row['height']}"


RUNTIME_COLUMNS: tuple[Column, ...] = (
    ("runtime", "label"),
    ("thr", "threads"),
    ("resolution", _size),
    ("median ms", "median_ms"),
    ("p95 ms", "p95_ms"),
    ("FPS", "fps"),
    ("load ms", lambda r: r["load_s"] * 1000),
    ("peak RSS MiB", "peak_rss_mb"),
    ("model", "model_source"),
)
RATIO_COLUMNS: tuple[Column, ...] = (
    ("threads", "threads"),
    ("resolution", _size),
    ("FP32 ms", lambda r: r["ort_fp32"]["median_ms"]),
    ("INT8 int8_cpu ms", lambda r: r["ort_int8_cpu"]["median_ms"]),
    ("INT8/FP32 speed-up", lambda r: f"x{r['int8_fp32_speedup']:.2f}"),
    ("TRT-QDQ in ORT ms", lambda r: r["ort_int8_trt"]["median_ms"]),
    ("TRT-QDQ speed-up", lambda r: f"x{r['int8_trt_qdq_vs_fp32_speedup']:.2f}"),
)
EFFICIENCY_COLUMNS: tuple[Column, ...] = (
    ("threads", "threads"),
    ("GMAC", "gmacs"),
    ("ms/GMAC", lambda r: f"{r['ms_per_gmac']:.2f}"),
    ("achieved GOPS", "achieved_int8_gops"),
    ("roofline GOPS", "roofline_int8_gops"),
    ("fraction", lambda r: _pct(r.get("fraction_of_roofline"))),
    ("conv roofline", "conv_roofline_int8_gops"),
    ("fraction", lambda r: _pct(r.get("fraction_of_conv_roofline"))),
)
ROOFLINE_COLUMNS: tuple[Column, ...] = (
    ("kernel", "kernel"),
    ("threads", "threads"),
    ("median ms", lambda r: f"{r['median_ms']:.2f}"),
    ("GOPS", "gops"),
)
PIXEL_COLUMNS: tuple[Column, ...] = (
    ("runtime", "runtime"),
    ("threads", "threads"),
    ("ms per MP", "ms_per_megapixel"),
    ("intercept ms", "intercept_ms"),
    ("r2", lambda r: f"{r['r2']:.3f}"),
    ("points", "points"),
)
PRESET_COLUMNS: tuple[Column, ...] = (
    ("preset", "preset"),
    ("threads", "threads"),
    ("resolution", _size),
    ("GMAC", lambda r: f"{r['gmacs']:.2f}"),
    ("params", "params"),
    ("FP32 ms", "fp32_median_ms"),
    ("INT8 ms", "int8_median_ms"),
    ("INT8 FPS", "int8_fps"),
    ("INT8 ms/GMAC", lambda r: f"{r['int8_ms_per_gmac']:.2f}"),
    ("speed-up", lambda r: f"x{r['int8_speedup']:.2f}"),
)
PEER_COLUMNS: tuple[Column, ...] = (
    ("method", "method"),
    ("kind", "kind"),
    ("PSNR dB", "psnr_output"),
    ("SSIM", lambda r: _fmt(r.get("ssim_output"), 3)),
    ("FPS", "fps"),
    ("note", lambda r: r.get("note", "")),
)
TARGET_COLUMNS: tuple[Column, ...] = (
    ("target", "target"),
    ("value", lambda r: _fmt(r["value"], 3)),
    ("threshold", lambda r: f"{r['threshold']:g}"),
    ("met", lambda r: {True: "yes", False: "NO", None: "n/a"}[r["met"]]),
    ("note", "note"),
)


def _failures(result: dict[str, Any]) -> list[str]:
    failed = [r for r in result.get("runtimes") or [] if not r.get("ok")]
    lines = [f"FAILED {r['runtime']} {r['threads']}t {_size(r)}: {r.get('error')}" for r in failed]
    return lines + [f"unavailable: {u['label']} — {u['reason']}" for u in result.get("unavailable") or []]


def _node(result: dict[str, Any]) -> list[str]:
    node = result.get("node") or {}
    if not node.get("frame_pipeline"):
        return []
    p = node["frame_pipeline"]
    parts = [
        "## Node vs bare runtime",
        f"frame pipeline (ROS-free: {p['encoding']} decode + infer + encode, {_size(p)}, {p['threads']} threads): "
        f"{p['pipeline']['median_ms']:.2f} ms vs bare {p['bare']['median_ms']:.2f} ms -> FPS ratio "
        f"{p['fps_ratio']:.3f}, added {p['added_latency_ms']:.2f} ms, latency ratio {p['latency_ratio']:.3f}",
    ]
    for key, label in (
        ("ros_node", "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA"),
        ("ros_node_default_transport", "default Fast DDS transport"),
    ):
        if key not in node:
            continue
        ros = node.get(key) or {}
        summary = ros.get("summary") or {}
        line = f"ROS node (benchmarks/node_vs_runtime.py, {label}): {ros.get('status')}"
        if summary:
            line += f": FPS ratio {_fmt(summary.get('fps_ratio'), 3)}, "
            line += f"latency ratio {_fmt(summary.get('latency_ratio'), 3)}"
        parts.append(line + (f" — {ros['note']}" if ros.get("note") else ""))
    return parts


def render(result: dict[str, Any], markdown: bool = False) -> str:
    """Every table of a result, as aligned text or (``markdown``) GitHub tables for docs/performance.md."""

    def section(title: str, rows: list[dict[str, Any]] | None, columns: tuple[Column, ...]) -> list[str]:
        if not rows:
            return []
        cells = [[cell(row) if callable(cell) else row.get(cell) for _, cell in columns] for row in rows]
        return [f"## {title}", table([header for header, _ in columns], cells, markdown)]

    scaling, peers = result.get("scaling") or {}, result.get("peers") or {}
    ok = [r for r in result.get("runtimes") or [] if r.get("ok")]
    parts = [f"# qdr bench ({result['mode']}) — {result['machine']['cpu_model']}, {result['load_note']}"]
    parts += section("Runtimes (median of N after warm-up; one subprocess per row)", ok, RUNTIME_COLUMNS)
    parts += _failures(result)
    parts += section(
        "Ratios (ORT FP32 / INT8 interleaved in one process)", result.get("ratios"), RATIO_COLUMNS
    )
    efficiency = "Efficiency (int8_cpu model: 2 x conv MACs / median time vs measured roofline)"
    parts += section(efficiency, result.get("efficiency"), EFFICIENCY_COLUMNS)
    parts += section("Roofline kernels", (result.get("roofline") or {}).get("kernels"), ROOFLINE_COLUMNS)
    parts += section(
        "Scaling with pixels (ms = intercept + slope x MP)", scaling.get("pixels"), PIXEL_COLUMNS
    )
    parts += section(
        "Scaling with preset (ORT, interleaved FP32/INT8)", scaling.get("presets"), PRESET_COLUMNS
    )
    parts += _node(result)
    for task, rows in (peers.get("tasks") or {}).items():
        title = (
            f"Peers: {task} ({peers['n_images']} images from {peers['images']}, max side "
            f"{peers['max_side']}; speed at {peers['speed_resolution']}, {peers['speed_threads']} threads)"
        )
        parts += section(title, rows, PEER_COLUMNS)
    parts += section("Targets", result.get("targets"), TARGET_COLUMNS)
    if result.get("errors"):
        parts.append("## Errors\n" + "\n".join(f"{k}: {v}" for k, v in result["errors"].items()))
    parts.append(
        f"load average start {result.get('loadavg_start')} end {result.get('loadavg_end')}; {result.get('elapsed_s')} s"
    )
    return "\n\n".join(parts)


def write_json(result: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str, allow_nan=True) + "\n")
    return path


def _not_measured(ax: Any, what: str) -> None:
    """An empty panel says so, instead of showing blank axes that read like a broken plot."""
    ax.text(0.5, 0.5, f"{what}: not measured in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set(xticks=[], yticks=[])


def _throughput_panel(ax: Any, result: dict[str, Any]) -> None:
    """FPS vs megapixels, one line per runtime and thread count."""
    rows = [r for r in result.get("runtimes") or [] if r.get("ok")]
    for key in dict.fromkeys(r["runtime"] for r in rows):
        for t in sorted({r["threads"] for r in rows if r["runtime"] == key}):
            pts = sorted(
                (r["megapixels"], r["fps"]) for r in rows if r["runtime"] == key and r["threads"] == t
            )
            label = next(r["label"] for r in rows if r["runtime"] == key)
            ax.plot(*zip(*pts), marker="o", linestyle="-" if t == 1 else "--", label=f"{label}, {t}t")
    ax.axhline(30, color="grey", linewidth=0.8, linestyle=":")
    ax.set(xlabel="megapixels", ylabel="FPS (median)", title="Throughput vs resolution", yscale="log")
    ax.legend(fontsize=7)


def _ratio_panel(ax: Any, result: dict[str, Any]) -> None:
    """FPS of ORT FP32 and both INT8 models at the headline size."""
    ratios = result.get("ratios") or []
    if not ratios:
        return _not_measured(ax, "INT8 vs FP32 ratio")
    bars = (
        ("ort_fp32", "ORT FP32"),
        ("ort_int8_cpu", "ORT INT8 int8_cpu"),
        ("ort_int8_trt", "ORT TRT-style QDQ"),
    )
    x = range(len(ratios))
    for i, (key, name) in enumerate(bars):
        ax.bar([j + 0.27 * (i - 1) for j in x], [r[key]["fps"] for r in ratios], width=0.27, label=name)
    for j, r in zip(x, ratios):
        speedup = f"x{r['int8_fp32_speedup']:.2f}"
        ax.annotate(speedup, (j, r["ort_int8_cpu"]["fps"]), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), [f"{r['threads']}t" for r in ratios])
    ax.set(ylabel="FPS", title=f"INT8 vs FP32 at {_size(ratios[0])} (interleaved)")
    ax.legend(fontsize=7)


def _preset_panel(ax: Any, result: dict[str, Any]) -> None:
    """Time vs MACs of every preset (INT8 and FP32)."""
    presets = (result.get("scaling") or {}).get("presets") or []
    for t in sorted({r["threads"] for r in presets}):
        sub = [r for r in presets if r["threads"] == t]
        gmacs = [r["gmacs"] for r in sub]
        ax.plot(gmacs, [r["int8_median_ms"] for r in sub], marker="o", label=f"INT8 {t}t")
        ax.plot(gmacs, [r["fp32_median_ms"] for r in sub], marker="s", linestyle="--", label=f"FP32 {t}t")
        for r in sub:
            ax.annotate(r["preset"], (r["gmacs"], r["int8_median_ms"]), fontsize=7)
    ax.set(xlabel="GMAC per frame", ylabel="ms (median)", title="Time vs preset size")
    if presets:
        ax.legend(fontsize=7)
    else:
        _not_measured(ax, "preset scaling")


def _peer_panel(ax: Any, result: dict[str, Any]) -> None:
    """Quality vs speed of qdr and its peers on the same frames."""
    peers = result.get("peers") or {}
    for task, rows in (peers.get("tasks") or {}).items():
        pts = [r for r in rows if "psnr_output" in r and r.get("fps")]
        ax.scatter([r["fps"] for r in pts], [r["psnr_output"] for r in pts], label=task)
        for r in pts:
            ax.annotate(r["method"], (r["fps"], r["psnr_output"]), fontsize=6)
    title = "Peers: quality vs speed (same frames)"
    ax.set(xscale="log", xlabel="FPS at 640x480", ylabel="PSNR dB", title=title)
    if peers.get("tasks"):
        ax.legend(fontsize=7)
    else:
        _not_measured(ax, "peers")


#: The figure's panels, row by row.
PANELS = (_throughput_panel, _ratio_panel, _preset_panel, _peer_panel)


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path | None:
    """A 2x2 figure: FPS vs megapixels per runtime, INT8 vs FP32, preset scaling, peers quality vs
    speed. None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    gpu = "; GPU " + ", ".join(result["machine"]["gpus"]) if result["machine"].get("gpus") else ""
    title = f"qdr bench ({result['mode']}) — {result['machine']['cpu_model']}{gpu}; load avg"
    fig.suptitle(f"{title} {result['loadavg_start'][:1]}", fontsize=10)
    for ax, panel in zip(axes.flat, PANELS):
        panel(ax, result)

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m qdr_core.bench.report RESULT.json [--markdown]``: re-render a stored result."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("json_path")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    print(render(json.loads(Path(args.json_path).read_text()), markdown=args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
