"""Bench output: the tables printed to the terminal, the JSON file and the PNG figure."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


_MARKDOWN = False  # set by render(markdown=True): tables as GitHub markdown instead of aligned text


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[_fmt(c) if not isinstance(c, str) else c for c in r] for r in rows]]
    if _MARKDOWN:
        lines = ["| " + " | ".join(str(c) for c in r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in headers) + "|")
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(result: dict[str, Any], markdown: bool = False) -> str:
    """Every table of a result, as aligned text or (``markdown``) GitHub tables for docs/performance.md."""
    global _MARKDOWN
    _MARKDOWN, previous = markdown, _MARKDOWN
    try:
        return _render(result)
    finally:
        _MARKDOWN = previous


def _render(result: dict[str, Any]) -> str:
    parts = [f"# qdr bench ({result['mode']}) — {result['machine']['cpu_model']}, {result['load_note']}"]
    rows = [r for r in result.get("runtimes") or [] if r.get("ok")]
    if rows:
        parts.append("## Runtimes (median of N after warm-up; one subprocess per row)")
        parts.append(table(
            ["runtime", "thr", "resolution", "median ms", "p95 ms", "FPS", "load ms", "peak RSS MiB", "model"],
            [[r["label"], r["threads"], f"{r['width']}x{r['height']}", r["median_ms"], r["p95_ms"], r["fps"],
              r["load_s"] * 1000, r["peak_rss_mb"], r["model_source"]] for r in rows],
        ))  # fmt: skip
    failed = [r for r in result.get("runtimes") or [] if not r.get("ok")]
    for r in failed:
        parts.append(f"FAILED {r['runtime']} {r['threads']}t {r['width']}x{r['height']}: {r.get('error')}")
    for u in result.get("unavailable") or []:
        parts.append(f"unavailable: {u['label']} — {u['reason']}")
    if result.get("ratios"):
        parts.append("## Ratios (ORT FP32 / INT8 interleaved in one process)")
        parts.append(table(
            ["threads", "resolution", "FP32 ms", "INT8 int8_cpu ms", "INT8/FP32 speed-up", "TRT-QDQ in ORT ms", "TRT-QDQ speed-up"],
            [[r["threads"], f"{r['width']}x{r['height']}", r["ort_fp32"]["median_ms"], r["ort_int8_cpu"]["median_ms"],
              f"x{r['int8_fp32_speedup']:.2f}", r["ort_int8_trt"]["median_ms"], f"x{r['int8_trt_qdq_vs_fp32_speedup']:.2f}"]
             for r in result["ratios"]],
        ))  # fmt: skip
    if result.get("efficiency"):
        parts.append("## Efficiency (int8_cpu model: 2 x conv MACs / median time vs measured roofline)")
        parts.append(table(
            ["threads", "GMAC", "ms/GMAC", "achieved GOPS", "roofline GOPS", "fraction", "conv roofline", "fraction"],
            [[r["threads"], r["gmacs"], f"{r['ms_per_gmac']:.2f}", r["achieved_int8_gops"], r.get("roofline_int8_gops"),
              _pct(r.get("fraction_of_roofline")), r.get("conv_roofline_int8_gops"), _pct(r.get("fraction_of_conv_roofline"))]
             for r in result["efficiency"]],
        ))  # fmt: skip
    if result.get("roofline"):
        parts.append("## Roofline kernels")
        parts.append(table(
            ["kernel", "threads", "median ms", "GOPS"],
            [[k["kernel"], k["threads"], f"{k['median_ms']:.2f}", k["gops"]] for k in result["roofline"]["kernels"]],
        ))  # fmt: skip
    scaling = result.get("scaling") or {}
    if scaling.get("pixels"):
        parts.append("## Scaling with pixels (ms = intercept + slope x MP)")
        parts.append(table(
            ["runtime", "threads", "ms per MP", "intercept ms", "r2", "points"],
            [[f["runtime"], f["threads"], f["ms_per_megapixel"], f["intercept_ms"], f"{f['r2']:.3f}", f["points"]] for f in scaling["pixels"]],
        ))  # fmt: skip
    if scaling.get("presets"):
        parts.append("## Scaling with preset (ORT, interleaved FP32/INT8)")
        parts.append(table(
            ["preset", "threads", "resolution", "GMAC", "params", "FP32 ms", "INT8 ms", "INT8 FPS", "INT8 ms/GMAC", "speed-up"],
            [[r["preset"], r["threads"], f"{r['width']}x{r['height']}", f"{r['gmacs']:.2f}", r["params"], r["fp32_median_ms"],
              r["int8_median_ms"], r["int8_fps"], f"{r['int8_ms_per_gmac']:.2f}", f"x{r['int8_speedup']:.2f}"] for r in scaling["presets"]],
        ))  # fmt: skip
    node = result.get("node") or {}
    if node.get("frame_pipeline"):
        p = node["frame_pipeline"]
        parts.append("## Node vs bare runtime")
        parts.append(
            f"frame pipeline (ROS-free: {p['encoding']} decode + infer + encode, {p['width']}x{p['height']}, {p['threads']} threads): "
            f"{p['pipeline']['median_ms']:.2f} ms vs bare {p['bare']['median_ms']:.2f} ms -> FPS ratio {p['fps_ratio']:.3f}, "
            f"added {p['added_latency_ms']:.2f} ms, latency ratio {p['latency_ratio']:.3f}"
        )
        for key, label in (
            ("ros_node", "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA"),
            ("ros_node_default_transport", "default Fast DDS transport"),
        ):
            if key not in node:
                continue
            ros = node.get(key) or {}
            summary = ros.get("summary") or {}
            parts.append(f"ROS node (benchmarks/node_vs_runtime.py, {label}): {ros.get('status')}"
                         + (f": FPS ratio {_fmt(summary.get('fps_ratio'), 3)}, latency ratio {_fmt(summary.get('latency_ratio'), 3)}" if summary else "")
                         + (f" — {ros['note']}" if ros.get("note") else ""))  # fmt: skip
    peers = result.get("peers") or {}
    for task, rows in (peers.get("tasks") or {}).items():
        parts.append(f"## Peers: {task} ({peers['n_images']} images from {peers['images']}, max side {peers['max_side']}; "
                     f"speed at {peers['speed_resolution']}, {peers['speed_threads']} threads)")  # fmt: skip
        parts.append(table(
            ["method", "kind", "PSNR dB", "SSIM", "FPS", "note"],
            [[r["method"], r["kind"], r.get("psnr_output"), _fmt(r.get("ssim_output"), 3), r.get("fps"), r.get("note", "")] for r in rows],
        ))  # fmt: skip
    if result.get("targets"):
        parts.append("## Targets")
        parts.append(table(
            ["target", "value", "threshold", "met", "note"],
            [[t["target"], _fmt(t["value"], 3), t["threshold"], {True: "yes", False: "NO", None: "n/a"}[t["met"]], t["note"]] for t in result["targets"]],
        ))  # fmt: skip
    if result.get("errors"):
        parts.append("## Errors\n" + "\n".join(f"{k}: {v}" for k, v in result["errors"].items()))
    parts.append(
        f"load average start {result.get('loadavg_start')} end {result.get('loadavg_end')}; {result.get('elapsed_s')} s"
    )
    return "\n\n".join(parts)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def write_json(result: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str, allow_nan=True) + "\n")
    return path


def _not_measured(ax: Any, what: str) -> None:
    """An empty panel says so, instead of showing blank axes that read like a broken plot."""
    ax.text(0.5, 0.5, f"{what}: not measured in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set(xticks=[], yticks=[])


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
    title = (
        f"qdr bench ({result['mode']}) — {result['machine']['cpu_model']}{gpu}; "
        f"load avg {result['loadavg_start'][:1]}"
    )
    fig.suptitle(title, fontsize=10)

    ax = axes[0, 0]
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

    ax = axes[0, 1]
    ratios = result.get("ratios") or []
    if ratios:
        labels = [f"{r['threads']}t" for r in ratios]
        x = range(len(ratios))
        for i, (key, name) in enumerate(
            (
                ("ort_fp32", "ORT FP32"),
                ("ort_int8_cpu", "ORT INT8 int8_cpu"),
                ("ort_int8_trt", "ORT TRT-style QDQ"),
            )
        ):
            ax.bar([j + 0.27 * (i - 1) for j in x], [r[key]["fps"] for r in ratios], width=0.27, label=name)
        for j, r in zip(x, ratios):
            ax.annotate(
                f"x{r['int8_fp32_speedup']:.2f}",
                (j, r["ort_int8_cpu"]["fps"]),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(list(x), labels)
        ax.set(
            ylabel="FPS", title=f"INT8 vs FP32 at {ratios[0]['width']}x{ratios[0]['height']} (interleaved)"
        )
        ax.legend(fontsize=7)
    else:
        _not_measured(ax, "INT8 vs FP32 ratio")

    ax = axes[1, 0]
    presets = (result.get("scaling") or {}).get("presets") or []
    for t in sorted({r["threads"] for r in presets}):
        sub = [r for r in presets if r["threads"] == t]
        ax.plot([r["gmacs"] for r in sub], [r["int8_median_ms"] for r in sub], marker="o", label=f"INT8 {t}t")
        ax.plot(
            [r["gmacs"] for r in sub],
            [r["fp32_median_ms"] for r in sub],
            marker="s",
            linestyle="--",
            label=f"FP32 {t}t",
        )
        for r in sub:
            ax.annotate(r["preset"], (r["gmacs"], r["int8_median_ms"]), fontsize=7)
    ax.set(xlabel="GMAC per frame", ylabel="ms (median)", title="Time vs preset size")
    if presets:
        ax.legend(fontsize=7)
    else:
        _not_measured(ax, "preset scaling")

    ax = axes[1, 1]
    peers = result.get("peers") or {}
    for task, rows in (peers.get("tasks") or {}).items():
        pts = [r for r in rows if "psnr_output" in r and r.get("fps")]
        ax.scatter([r["fps"] for r in pts], [r["psnr_output"] for r in pts], label=task)
        for r in pts:
            ax.annotate(r["method"], (r["fps"], r["psnr_output"]), fontsize=6)
    ax.set(
        xscale="log", xlabel="FPS at 640x480", ylabel="PSNR dB", title="Peers: quality vs speed (same frames)"
    )
    if peers.get("tasks"):
        ax.legend(fontsize=7)
    else:
        _not_measured(ax, "peers")

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
