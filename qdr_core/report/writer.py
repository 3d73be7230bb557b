"""Write report.md + report.html: summary tables, PSNR per segment (a day-long bag), latency
histogram, PSNR per frame, a degraded | restored | clean grid, crops around the brightest spots
(``crops``) and LDG gate maps.

Plots use matplotlib's Agg backend (no display). Gate maps need a qdr ``.pt`` checkpoint: the
evaluated model itself, or the ``fp32.pt`` shipped next to an ONNX model (then the maps are the
FP32 teacher's, said so in the report); ``ResidualBlock.keep_gate`` makes each gated block keep its
last gate, whose channel mean is shown per block.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np

from qdr_core.data.imageio import write_rgb
from qdr_core.metrics import HALO_NOTE
from qdr_core.report.crops import SCALE, bright_crops
from qdr_core.report.crops import label as _label


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _arrow(a: Any, b: Any, digits: int = 2) -> str:
    return f"{_fmt(a, digits)} → {_fmt(b, digits)}"


RING_HEADING = "ring around bright objects, degraded → restored (levels)"
RING_NOTE = f"Ring: `metrics.halo`, {HALO_NOTE}; over the segment's frames that have such a region (count in brackets); — = none."


def _ring(segment: dict[str, Any]) -> str:
    if segment.get("halo") is None:
        return "—"
    return f"{segment['halo_input']:+.1f} → {segment['halo']:+.1f} ({segment['halo_frames']})"


def _segment_cells(g: dict[str, Any]) -> list[str]:
    return [
        g["name"],
        g["condition"],
        str(g["n_frames"]),
        _arrow(g["psnr_input"], g["psnr_output"]),
        _ring(g),
    ]


SEGMENT_HEADINGS = ("segment", "condition", "frames", "PSNR degraded → restored (dB)", RING_HEADING)


def _segments_markdown(segments: list[dict[str, Any]]) -> list[str]:
    """The "PSNR per segment" section of a day-long bag's report (none without segments)."""
    if not segments:
        return []
    lines = [
        "## PSNR per segment",
        "",
        "| " + " | ".join(SEGMENT_HEADINGS) + " |",
        "|---" * len(SEGMENT_HEADINGS) + "|",
    ]
    lines += ["| " + " | ".join(_segment_cells(g)) + " |" for g in segments]
    return [*lines, "", RING_NOTE, ""]


def _segments_html(segments: list[dict[str, Any]]) -> list[str]:
    if not segments:
        return []
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in SEGMENT_HEADINGS)
    rows = ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _segment_cells(g)) + "</tr>" for g in segments]
    return [f"<h2>PSNR per segment</h2><table><tr>{head}</tr>", *rows, f"</table><p>{esc(RING_NOTE)}</p>"]


def temporal_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The temporal metrics (``qdr_core.temporal``), when the result has them: 8-bit levels."""
    if "warp_error_output" not in result:
        return []
    return [
        (
            "warping error degraded → restored (clean clip's own: the floor)",
            f"{_arrow(result.get('warp_error_input'), result['warp_error_output'])} "
            f"({_fmt(result.get('warp_error_clean'))})",
        ),
        (
            "flicker degraded → restored (std of mean-luma error)",
            _arrow(result.get("flicker_input"), result.get("flicker_output")),
        ),
    ]


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of the headline table."""
    rows = [
        ("mode", result.get("mode", "")),
        ("bag", result.get("bag", "")),
        ("model", result.get("model", "")),
        ("backend", result.get("backend", "")),
        ("frames", _fmt(result.get("n_frames"))),
    ]
    if "psnr_input" in result:
        rows += [
            ("PSNR degraded → restored (dB)", _arrow(result["psnr_input"], result["psnr_output"])),
            ("SSIM degraded → restored", _arrow(result["ssim_input"], result["ssim_output"], 3)),
        ]
    rows += temporal_rows(result)
    nr = result.get("no_reference")
    if nr:
        for key in ("brightness", "contrast", "sharpness", "colorfulness"):
            rows.append(
                (f"{key} input → output (no reference)", _arrow(nr["input"][key], nr["output"][key], 4))
            )
    det = result.get("detection")
    if det:
        if "degraded" in det:
            rows.append((f"person AP@0.5 degraded → restored ({det['detector']})",
                         _arrow(det["degraded"]["ap50"], det["restored"]["ap50"], 3)))  # fmt: skip
            rows.append(("person recall@0.5 degraded → restored",
                         _arrow(det["degraded"]["recall50"], det["restored"]["recall50"], 3)))  # fmt: skip
        rows.append((f"persons found (score ≥ {det['reference_score']}) input → output",
                     _arrow(det["persons_input"], det["persons_output"])))  # fmt: skip
    if result.get("mode") == "live":
        lat = result["latency_ms"]
        rows += [
            (
                "end-to-end latency p50 / p95 / p99 (ms)",
                f"{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / {_fmt(lat['p99'])}",
            ),
            ("input rate → throughput (fps)", _arrow(result.get("input_fps"), result.get("throughput_fps"))),
            (
                "frames sent / received / dropped",
                f"{result['frames_sent']} / {result['frames_received']} / {result['frames_dropped']}",
            ),
        ]
    if result.get("infer_ms"):
        t = result["infer_ms"]
        rows.append(("inference p50 / p95 (ms)", f"{_fmt(t['p50'])} / {_fmt(t['p95'])}"))
        rows.append(("inference fps (1 / mean)", _fmt(result.get("fps"))))
    return rows


def _plot_latency(result: dict[str, Any], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result.get("mode") == "live":
        values, label = result.get("latencies_ms", []), "end-to-end latency (ms)"
    else:
        values, label = (
            [r["infer_ms"] for r in result.get("frames", []) if "infer_ms" in r],
            "inference time (ms)",
        )
    if not values:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="#3572a5")
    for q, style in ((50, "-"), (95, "--"), (99, ":")):
        ax.axvline(float(np.percentile(values, q)), color="k", linestyle=style, linewidth=1, label=f"p{q}")
    ax.set_xlabel(label)
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _plot_psnr(result: dict[str, Any], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result.get("frames", []) if "psnr_input" in r]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if rows:
        x = [r["index"] for r in rows]
        ax.plot(x, [r["psnr_input"] for r in rows], "o-", label="degraded", color="#b04040")
        ax.plot(x, [r["psnr_output"] for r in rows], "o-", label="restored", color="#3572a5")
        ax.set_ylabel("PSNR (dB)")
    else:
        rows = [r for r in result.get("frames", []) if "input_stats" in r]
        if not rows:
            plt.close(fig)
            return False
        x = [r["index"] for r in rows]
        ax.plot(x, [r["input_stats"]["brightness"] for r in rows], "o-", label="input", color="#b04040")
        ax.plot(x, [r["output_stats"]["brightness"] for r in rows], "o-", label="output", color="#3572a5")
        ax.set_ylabel("mean brightness (no reference)")
    ax.set_xlabel("frame")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _thumb(image: np.ndarray, width: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def grid_image(grid: list[dict[str, Any]], width: int = 320) -> np.ndarray | None:
    """Rows of degraded | restored | clean (clean column only when a reference exists)."""
    if not grid:
        return None
    rows = []
    for cell in grid:
        names = ["degraded", "restored"] + (["clean"] if cell.get("clean") is not None else [])
        tiles = [_label(_thumb(cell[n], width), f"{n} #{cell['index']}") for n in names]
        rows.append(np.concatenate(tiles, axis=1))
    widest = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, widest - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)


def checkpoint_for_gates(model_path: str | os.PathLike) -> tuple[Path | None, str]:
    """The .pt to draw gate maps from, and a note saying where it came from."""
    path = Path(model_path)
    if path.suffix.lower() in (".pt", ".pth") and path.is_file():
        return path, f"gates of {path.name}"
    sibling = path.with_name("fp32.pt")
    if sibling.is_file():
        return (
            sibling,
            f"gates of the FP32 checkpoint {sibling.name} next to {path.name} (the ONNX graph does not expose them)",
        )
    return None, "no .pt checkpoint: gate maps need the torch model"


def gate_maps(checkpoint: str | os.PathLike, images: list[np.ndarray]) -> list[list[np.ndarray]]:
    """For each float RGB image, the channel-mean gate map (HxW in [0, 1], image size) of every
    gated block. Runs the checkpoint with torch; empty lists for a model without LDG."""
    import cv2
    import torch

    from qdr_core.models.blocks import ResidualBlock
    from qdr_core.quant.qat_model import load_model
    from qdr_core.runtime.base import pad_image

    model = load_model(checkpoint)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock) and m.gate is not None]
    for block in blocks:
        block.keep_gate = True
    out = []
    with torch.inference_mode():
        for image in images:
            h, w = image.shape[:2]
            padded = pad_image(np.asarray(image, np.float32), int(getattr(model, "size_multiple", 4)))
            model(torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None])
            maps = []
            for block in blocks:
                g = block.last_gate[0].float().mean(0).numpy()
                g = cv2.resize(g, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)[:h, :w]
                maps.append(np.clip(g, 0, 1))
            out.append(maps)
    for block in blocks:
        block.keep_gate = False
        block.last_gate = None
    return out


def _gate_image(grid: list[dict[str, Any]], checkpoint: Path, width: int = 240) -> np.ndarray | None:
    import cv2

    if not grid:
        return None
    per_frame = gate_maps(checkpoint, [cell["degraded"].astype(np.float32) / 255 for cell in grid])
    if not per_frame or not per_frame[0]:
        return None
    rows = []
    for cell, maps in zip(grid, per_frame):
        tiles = [_label(_thumb(cell["degraded"], width), f"input #{cell['index']}")]
        for k, g in enumerate(maps):
            # Stretched per map (range in the label): a gate's spatial pattern is the point.
            lo, hi = float(g.min()), float(g.max())
            scaled = (g - lo) / (hi - lo) if hi - lo > 1e-6 else np.zeros_like(g)
            colour = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
            tiles.append(_label(_thumb(np.ascontiguousarray(colour), width), f"gate {k} [{lo:.2f}-{hi:.2f}]"))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


def write_report(
    result: dict[str, Any], scorer: Any, out_dir: str | os.PathLike, title: str = "qdr evaluation"
) -> Path:
    """Write ``report.md``, ``report.html`` and their images into ``out_dir``; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    if _plot_latency(result, out / "latency.png"):
        figures.append(
            ("latency.png", "End-to-end latency" if result.get("mode") == "live" else "Inference time")
        )
    if _plot_psnr(result, out / "psnr.png"):
        figures.append(("psnr.png", "PSNR per frame" if "psnr_input" in result else "Brightness per frame"))
    grid = grid_image(getattr(scorer, "grid", []))
    if grid is not None:
        write_rgb(out / "grid.png", grid)
        figures.append(("grid.png", "degraded | restored | clean"))
        crops = bright_crops(getattr(scorer, "grid", []))
        if crops is not None:
            write_rgb(out / "crops.png", crops)
            figures.append(
                ("crops.png", f"around the brightest spot (lamps), {SCALE}x: input | output | clean")
            )
    checkpoint, gate_note = checkpoint_for_gates(result.get("model", ""))
    if checkpoint is not None:
        try:
            gates = _gate_image(getattr(scorer, "grid", []), checkpoint)
        except Exception as exc:  # torch missing or a foreign checkpoint: the report still gets written
            gates, gate_note = None, f"gate maps unavailable ({type(exc).__name__}: {exc})"
        if gates is not None:
            write_rgb(out / "gates.png", gates)
            figures.append(("gates.png", f"LDG gate maps ({gate_note})"))
        elif "unavailable" not in gate_note:
            gate_note = "the model has no LDG gates"
    rows = summary_rows(result)

    md = [f"# {title}", "", "| | |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    md.append("")
    segments = result.get("segments") or []
    md += _segments_markdown(segments)
    for name, caption in figures:
        md += [f"## {caption}", "", f"![{caption}]({name})", ""]
    if not any(n == "gates.png" for n, _ in figures):
        md += ["## LDG gate maps", "", gate_note, ""]
    per_frame = [r for r in result.get("frames", [])]
    if per_frame:
        keys = [k for k in ("index", "psnr_input", "psnr_output", "ssim_input", "ssim_output", "infer_ms",
                            "latency_ms", "persons_clean", "persons_input", "persons_output") if k in per_frame[0]]  # fmt: skip
        md += ["## Frames", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        md += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in per_frame[:200]]
        md.append("")
    (out / "report.md").write_text("\n".join(md))

    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", "<table>"]
    body += [f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows]
    body.append("</table>")
    body += _segments_html(segments)
    for name, caption in figures:
        body.append(f"<h2>{esc(caption)}</h2><img src='{esc(name)}' alt='{esc(caption)}'>")
    if not any(n == "gates.png" for n, _ in figures):
        body.append(f"<h2>LDG gate maps</h2><p>{esc(gate_note)}</p>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}img{max-width:100%}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    (out / "report.html").write_text(page)
    return out / "report.md"
