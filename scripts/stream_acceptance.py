"""Issue #14's acceptance of the streaming models from the ``qdr eval --compare`` results that
scripts/train_stream.sh writes (``stream_<task>_clips.json``, ``stream_<task>_pans.json``): prints
each criterion with its measured value and writes ``stream_acceptance.json`` beside them.

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


def criteria(task: str, clips: dict, pans: dict | None) -> list[dict]:
    """The criterion rows of one task: name, measured value, threshold, passed (the script exits 0
    either way: a failed criterion is a result, not an error)."""
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
    return [{"criterion": n, "value": v, "threshold": t, "passed": bool(ok)} for n, v, t, ok in rows]


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
        report[task] = criteria(task, json.loads(path.read_text()), pans)
        for row in report[task]:
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
