"""Issue #14's acceptance of the streaming models from the ``qdr eval --compare`` results that
scripts/train_stream.sh writes (``stream_<task>_clips.json``, ``stream_<task>_pans.json``) and, where
present, the timed pairs of ``stream_compute.json`` (scripts/bench_stream.py --pair): prints each
criterion with its measured value and writes ``stream_acceptance.json`` beside them, with the PSNR
delta by frame index (frame 0 has a zero state: there the streaming model is a still model, so the
later frames' delta minus frame 0's is what the carried state adds).

    .venv/bin/python scripts/stream_acceptance.py [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Tasks whose streaming model must gain (the others must be no worse); the thresholds.
GAIN_TASKS = ("lowlight", "noise")
MIN_PSNR_GAIN_DB = 1.0
MAX_WARP_CHANGE_PCT = -30.0
MAX_FLICKER = 0.5
MAX_COMPUTE_RATIO = 1.25


def criteria(task: str, clips: dict, pans: dict | None, timing: dict | None = None) -> list[dict]:
    """The criterion rows of one task: name, measured value, threshold, passed (the script exits 0
    either way: a failed criterion is a result, not an error). ``timing``: the task's
    ``stream_pair_timing`` row (streaming / single-frame median time)."""
    d = clips["delta"]
    rows = []
    if task in GAIN_TASKS:
        rows += [
            ("psnr_delta_db", d["psnr_delta"], f">= {MIN_PSNR_GAIN_DB}", d["psnr_delta"] >= MIN_PSNR_GAIN_DB),
            ("warp_error_change_pct", d["warp_error_change_pct"], f"<= {MAX_WARP_CHANGE_PCT}",
             d["warp_error_change_pct"] <= MAX_WARP_CHANGE_PCT),
            ("flicker_stream", d["flicker_stream"], f"<= {MAX_FLICKER}", d["flicker_stream"] <= MAX_FLICKER),
        ]  # fmt: skip
    else:
        rows.append(("psnr_delta_db", d["psnr_delta"], ">= 0", d["psnr_delta"] >= 0))
    if pans is not None:
        p = pans["delta"]["psnr_delta"]
        rows.append(("fast_pan_psnr_delta_db", p, ">= 0 (no ghosting)", p >= 0))
    if timing is not None:
        r = timing["time_ratio"]
        rows.append(("compute_time_ratio", r, f"<= {MAX_COMPUTE_RATIO}", r <= MAX_COMPUTE_RATIO))
    return [{"criterion": n, "value": v, "threshold": t, "passed": bool(ok)} for n, v, t, ok in rows]


def psnr_delta_by_frame(compared: dict) -> list[float]:
    """Streaming minus single-frame output PSNR at each frame index, averaged over the clips."""
    stream, single = compared["model"]["clips"], compared["compare"]["clips"]
    deltas = [
        [a["psnr_output"] - b["psnr_output"] for a, b in zip(s["frames"], c["frames"])]
        for s, c in zip(stream, single)
    ]
    return [sum(col) / len(col) for col in zip(*deltas)]


def task_timing(folder: Path, task: str) -> dict | None:
    """The ``stream_compute.json`` pair whose single-frame file is ``models/<task>/...``, if any."""
    path = folder / "stream_compute.json"
    pairs = json.loads(path.read_text()).get("pairs", []) if path.exists() else []
    return next((p for p in pairs if Path(p["single"]).parent.name == task), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="benchmarks/results")
    args = parser.parse_args()
    folder = Path(args.results)
    report = {}
    for path in sorted(folder.glob("stream_*_clips.json")):
        task = path.name[len("stream_") : -len("_clips.json")]
        pans_path = folder / f"stream_{task}_pans.json"
        pans = json.loads(pans_path.read_text()) if pans_path.exists() else None
        clips = json.loads(path.read_text())
        rows = criteria(task, clips, pans, task_timing(folder, task))
        by_frame = {name: psnr_delta_by_frame(r) for name, r in (("clips", clips), ("pans", pans)) if r}
        report[task] = {"criteria": rows, "psnr_delta_by_frame": by_frame}
        for name, deltas in by_frame.items():
            print(f"{task:9s} {name} PSNR delta by frame: " + " ".join(f"{d:+.2f}" for d in deltas))
        for row in rows:
            mark = "PASS" if row["passed"] else "FAIL"
            print(f"{task:9s} {row['criterion']:24s} {row['value']:+8.2f}  {row['threshold']:20s} {mark}")
    if not report:
        print(f"no stream_<task>_clips.json in {folder}")
        return 1
    (folder / "stream_acceptance.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {folder / 'stream_acceptance.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
