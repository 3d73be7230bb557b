"""The `auto` model's acceptance check (issue #13 part 4) from two condition-suite JSONs.

    .venv/bin/python scripts/auto_acceptance.py benchmarks/results/conditions_eval_auto.json \
        benchmarks/results/conditions_eval.json --out benchmarks/results/auto_acceptance_eval

Reads the auto model's INT8 (and, if present, FP32) cells and the specialists' cells (same suite,
same seed and split, so the same degraded frames) and writes OUT.json and OUT.md: per condition the
auto INT8 PSNR, the best specialist, the margin, the INT8 share of the FP32 gain, and each target
met or not. Targets are the issue's; nothing here lowers them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MIN_GAIN = 0.5


def _cells(path: str) -> tuple[dict, dict]:
    data = json.loads(Path(path).read_text())
    cells: dict[str, dict[str, dict]] = {}
    for cell in data["cells"]:
        cells.setdefault(cell["model"], {})[cell["condition"]] = cell
    return data, cells


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("auto_json", help="suite JSON with auto/int8_cpu (and auto/fp32)")
    p.add_argument("specialists_json", help="suite JSON of the specialists (same split and seed)")
    p.add_argument("--out", required=True, help="write OUT.json and OUT.md")
    args = p.parse_args(argv)
    auto_data, auto = _cells(args.auto_json)
    spec_data, spec = _cells(args.specialists_json)
    if auto_data["seed"] != spec_data["seed"] or auto_data["source"] != spec_data["source"]:
        raise SystemExit("the two suites differ in seed or photos; compare like with like")
    int8 = next(k for k in auto if k.endswith("int8_cpu"))
    fp32 = next((k for k in auto if k.endswith("fp32")), None)
    rows = []
    for name, cell in auto[int8].items():
        best_name, best = max(((m, c[name]) for m, c in spec.items()), key=lambda mc: mc[1]["psnr_output"])
        row = {
            "condition": name,
            "input": cell["psnr_input"],
            "auto_int8": cell["psnr_output"],
            "best_specialist": best_name,
            "best_specialist_psnr": best["psnr_output"],
            "margin": cell["psnr_output"] - best["psnr_output"],
            "harm": cell["harm"],
        }
        if fp32 is not None and cell["psnr_input"] is not None:
            f = auto[fp32][name]
            gain_fp32 = f["psnr_output"] - cell["psnr_input"]
            row["auto_fp32"] = f["psnr_output"]
            # A share of a gain under MIN_GAIN dB is noise, not a measurement.
            row["int8_gain_share"] = (cell["psnr_gain"] / gain_fp32) if gain_fp32 >= MIN_GAIN else None
        elif fp32 is not None:
            row["auto_fp32"] = auto[fp32][name]["psnr_output"]
        kind = (
            "clean" if name == "clean"
            else "bench" if name.startswith("bench:")
            else "mixture" if "+" in name
            else "single"
        )  # fmt: skip
        row["kind"] = kind
        if kind == "clean":
            row["target"], row["met"] = "auto >= 36 dB", cell["psnr_output"] >= 36.0
        elif kind == "mixture":
            row["target"] = "auto >= best single specialist + 1 dB"
            row["met"] = row["margin"] >= 1.0
        else:
            row["target"] = "auto within 1.0 dB of the best specialist"
            row["met"] = row["margin"] >= -1.0
        if name.endswith(":mild"):
            row["mild_no_harm"] = not cell["harm"]
        rows.append(row)
    out = Path(args.out)
    out.with_suffix(".json").write_text(
        json.dumps({"int8": int8, "fp32": fp32, "rows": rows}, indent=1) + "\n"
    )
    lines = [
        "| condition | input | auto INT8 | auto FP32 | INT8 share of FP32 gain | best specialist (INT8) | margin | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, fmt="{:.2f}"):
        return "—" if v is None else fmt.format(v)

    for r in rows:
        lines.append(
            f"| {r['condition']} | {f(r['input'])} | {f(r['auto_int8'])}{' ▼' if r['harm'] else ''} | "
            f"{f(r.get('auto_fp32'))} | {f(r.get('int8_gain_share'), '{:.0%}')} | "
            f"{r['best_specialist']} {f(r['best_specialist_psnr'])} | {r['margin']:+.2f} | {r['target']} | "
            f"{'yes' if r['met'] else '**no**'} |"
        )
    met = sum(r["met"] for r in rows)
    lines.append("")
    lines.append(
        f"{met} of {len(rows)} rows meet their target. PSNR in dB, mean over the split's photos; ▼ = harm."
    )
    shares = [r["int8_gain_share"] for r in rows if r.get("int8_gain_share") is not None]
    if shares:
        low = sum(v < 0.95 for v in shares)
        lines.append(
            f"INT8 keeps >= 95 % of the FP32 gain on {len(shares) - low} of the {len(shares)} rows where FP32 "
            f"gains >= {MIN_GAIN} dB (lowest {min(shares):.0%})."
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
