"""The benchmark suite: every step in a fixed order from one ``BenchOptions``; returns one dict.

A failing step is recorded (``errors``) and the rest still run: half a benchmark on a machine
without, say, the Zero-DCE package is worth more than none.
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qdr_core.bench import machine
from qdr_core.bench.models import DEFAULT_CACHE, ROLE_FILES, ModelFile, resolve_models
from qdr_core.bench.runtimes import ALL_RUNTIMES, RuntimeSpec, default_runtimes, unavailable_reason
from qdr_core.bench.targets import isolated_row, targets
from qdr_core.errors import BackendUnavailableError, ConfigError
from qdr_core.tasks import TASKS

SCHEMA = "qdr-bench/1"
HEADLINE = (640, 480)  # the resolution every target is stated at


@dataclass
class BenchOptions:
    """What one ``qdr bench`` run measures (``quick()`` / ``full()`` give the two standard sets)."""

    mode: str = "full"
    task: str = "lowlight"
    threads: list[int] = field(default_factory=lambda: [1, 2])
    resolutions: list[tuple[int, int]] = field(
        default_factory=lambda: [(320, 240), (640, 480), (1280, 720), (1920, 1080)]
    )
    runtimes: list[str] | None = None  # None: default_runtimes(device)
    device: str = "cpu"
    repeats: int = 20
    min_seconds: float = 2.0
    preset: str = "efm-s"  # of the stand-ins, when no model is shipped
    presets: list[str] = field(default_factory=lambda: ["efm-t", "efm-s", "efm-s-ctx", "efm-s-ctx5", "efm-m"])
    models_dir: str = "models"
    cache_dir: str = str(DEFAULT_CACHE)
    roofline: bool = True
    peers: bool = True
    peer_tasks: list[str] = field(default_factory=lambda: list(TASKS))
    peer_images: int = 11
    peer_max_side: int = 768
    node: bool = True
    stream: bool = True  # time models/<task>/stream/int8_cpu.onnx against the still file, if shipped
    ros_node: bool = True  # run benchmarks/node_vs_runtime.py when it exists
    warmup: int = 3
    worker_timeout_s: float = 600.0

    @classmethod
    def quick(cls, **overrides: Any) -> BenchOptions:
        base = {"mode": "quick", "resolutions": [(320, 240), (640, 480)], "repeats": 6, "min_seconds": 0.0}
        base |= {"warmup": 2, "peer_images": 3, "peer_max_side": 512, "worker_timeout_s": 120.0}
        opts = cls(**{**base, **overrides})
        if "peer_tasks" not in overrides:
            opts.peer_tasks = [opts.task]
        return opts

    def specs(self) -> list[RuntimeSpec]:
        if self.runtimes is None:
            return default_runtimes(self.device)
        unknown = [k for k in self.runtimes if k not in ALL_RUNTIMES]
        if unknown:
            raise ConfigError(f"unknown runtime(s) {unknown}; choose from {', '.join(ALL_RUNTIMES)}")
        return [ALL_RUNTIMES[k] for k in self.runtimes]


Log = Callable[[str], None]


_stderr: Log = functools.partial(print, file=sys.stderr, flush=True)


def _headline(options: BenchOptions) -> tuple[int, int]:
    return HEADLINE if HEADLINE in options.resolutions else options.resolutions[-1]


# -- steps ----------------------------------------------------------------------------------------------


def grid(
    options: BenchOptions, models: dict[str, ModelFile], specs: list[RuntimeSpec], log: Log
) -> list[dict[str, Any]]:
    """Each runtime x threads x resolution in its own subprocess: latency, load time, peak RSS."""
    from qdr_core.bench.worker import run_isolated

    rows = []
    timing = {k: getattr(options, k) for k in ("repeats", "warmup", "min_seconds")}
    for spec in specs:
        model = models[spec.role]
        # A GPU's speed does not depend on CPU threads: time it once.
        for t in options.threads if spec.device == "cpu" else options.threads[:1]:
            for width, height in options.resolutions:
                size = {"threads": t, "width": width, "height": height}
                cfg = {"model": model.path, "backend": spec.backend, "opts": spec.opts, "half": spec.half}
                cfg |= {**size, **timing, "engine_cache_dir": str(Path(options.cache_dir) / "engines")}
                r = run_isolated(cfg, timeout_s=options.worker_timeout_s)
                what = {"runtime": spec.key, "label": spec.label, "backend": spec.backend}
                what |= {"precision": spec.precision, "device": spec.device, "model_role": spec.role}
                what |= {"model": model.path, "model_source": model.source}
                rows.append({**what, **size, "megapixels": width * height / 1e6, **r})
                head = f"  {spec.key:16s} {t}t {width}x{height}:"
                log(
                    f"{head} {r['median_ms']:8.2f} ms (p95 {r['p95_ms']:.2f}) {r['fps']:7.1f} FPS  load "
                    f"{r['load_s'] * 1000:.0f} ms  peak RSS {r['peak_rss_mb']:.0f} MiB"
                    if r.get("ok")
                    else f"{head} FAILED {r.get('error')}"
                )
    return rows


def ratios(options: BenchOptions, models: dict[str, ModelFile], log: Log) -> list[dict[str, Any]]:
    """INT8 vs FP32 in onnxruntime, interleaved in one process at the headline resolution."""
    from qdr_core.bench.frames import frame_float
    from qdr_core.bench.timing import interleaved_models

    width, height = _headline(options)
    image = frame_float(height, width)
    rows = []
    for t in options.threads:
        paths = {role: models[role].path for role in ("fp32_onnx", "int8_cpu", "int8_trt")}
        timings = interleaved_models(paths, image, t, options.warmup, max(options.repeats, 8))
        fp32, cpu, trt = timings["fp32_onnx"], timings["int8_cpu"], timings["int8_trt"]
        row = {"threads": t, "width": width, "height": height, "ort_fp32": fp32.as_dict()}
        row |= {"ort_int8_cpu": cpu.as_dict(), "ort_int8_trt": trt.as_dict()}
        speedup, trt_speedup = fp32.median_ms / cpu.median_ms, fp32.median_ms / trt.median_ms
        row |= {"int8_fp32_speedup": speedup, "int8_trt_qdq_vs_fp32_speedup": trt_speedup}
        rows.append({**row, "loadavg": machine.load_average()})
        log(
            f"  {t}t {width}x{height}: ORT FP32 {fp32.median_ms:.1f} ms, INT8 (int8_cpu) {cpu.median_ms:.1f} ms "
            f"-> x{speedup:.2f}; TRT-style QDQ in ORT {trt.median_ms:.1f} ms (x{trt_speedup:.2f})"
        )
    return rows


def efficiency(
    ratio_rows: list[dict[str, Any]], roofline: dict[str, Any] | None, model: ModelFile, runtime_rows: list
) -> list[dict[str, Any]]:
    """Achieved int8 ops/s of the int8_cpu model (2 x conv MACs / median time) vs the roofline.

    The time comes from the isolated subprocess row where one exists: in the interleaved ratio
    process three onnxruntime sessions share the cores and their spinning thread pools slow each
    other down at 2 threads (measured: 54 ms interleaved vs 33 ms isolated for efm-s INT8).
    """
    from qdr_core.bench.models import onnx_complexity

    rows = []
    for r in ratio_rows:
        macs = onnx_complexity(model.path, r["height"], r["width"])["macs"]
        iso = isolated_row(runtime_rows, "ort-int8-cpu", r["threads"], r["width"], r["height"])
        median_ms = iso["median_ms"] if iso else r["ort_int8_cpu"]["median_ms"]
        achieved = 2 * macs / (median_ms / 1000) / 1e9
        row = {k: r[k] for k in ("threads", "width", "height")}
        row |= {"gmacs": macs / 1e9, "achieved_int8_gops": achieved, "ms_per_gmac": median_ms / (macs / 1e9)}
        row["timing"] = "isolated" if iso else "interleaved"
        if roofline:
            peak = roofline["peak_gops"].get(f"int8_{r['threads']}t")
            conv = roofline["conv_peak_gops"].get(f"int8_conv_{r['threads']}t")
            row |= {"roofline_int8_gops": peak, "fraction_of_roofline": achieved / peak if peak else None}
            row |= {
                "conv_roofline_int8_gops": conv,
                "fraction_of_conv_roofline": achieved / conv if conv else None,
            }
        rows.append(row)
    return rows


def _peer_entries(task: str, options: BenchOptions, log: Log) -> list[tuple[str, str, Any]]:
    """(name, kind, runtime-like) of every peer of ``task``."""
    from qdr_core.bench import peers

    identity = peers.FunctionPeer("input", lambda x: x)
    entries: list[tuple[str, str, Any]] = [("input (no restoration)", "reference", identity)]
    entries += [(name, "classical", peers.FunctionPeer(name, fn)) for name, fn in peers.CLASSICAL[task]]
    if task != "lowlight":
        return entries
    from qdr_core.runtime import load_runtime

    t = max(options.threads)
    try:
        if options.mode != "quick":  # ~0.5 s per 640x480 frame: too slow for the quick set
            zero_dce = peers.torch_peer("zero-dce", peers.load_zero_dce(), t)
            entries.append(("Zero-DCE++ torch FP32", "learned", zero_dce))
        onnx_path = peers.export_zero_dce(Path(options.cache_dir) / "zero_dce" / "zero_dce.onnx")
        zero_dce = load_runtime(onnx_path, backend="onnxruntime", num_threads=t)
        entries.append(("Zero-DCE++ ORT FP32", "learned", zero_dce))
    except BackendUnavailableError as exc:  # package not installed: reported, the classical peers still run
        log(f"  Zero-DCE unavailable: {exc}")
        entries.append(("Zero-DCE++", "unavailable", str(exc)))
    return entries


def peer_comparison(options: BenchOptions, log: Log) -> dict[str, Any]:
    """Quality (PSNR/SSIM on the same degraded frames) and speed (640x480) of qdr and its peers."""
    import cv2

    from qdr_core.bench import peers
    from qdr_core.bench.frames import frame_float
    from qdr_core.bench.models import find_shipped
    from qdr_core.bench.timing import measure
    from qdr_core.runtime import load_runtime

    threads = max(options.threads)
    cv2.setNumThreads(threads)
    width, height = _headline(options)
    frame = frame_float(height, width)
    source, names, images = peers.eval_images(options.peer_images, options.peer_max_side)
    out: dict[str, Any] = {"images": source, "n_images": len(images), "max_side": options.peer_max_side}
    out |= {"speed_threads": threads, "speed_resolution": f"{width}x{height}", "tasks": {}}
    for task in options.peer_tasks:
        rows = []
        entries = _peer_entries(task, options, log)
        for role in ("fp32_onnx", "int8_cpu", "int8_trt"):
            label = "qdr FP32 (ORT)" if role == "fp32_onnx" else f"qdr INT8 {role} (ORT)"
            shipped = find_shipped(options.models_dir, task, role)
            if shipped and shipped.source == "shipped":
                rt = load_runtime(shipped.path, backend="onnxruntime", num_threads=threads)
                entries.append((label, "qdr", rt))
            else:
                entries.append((label, "unavailable", f"no trained models/{task}/{ROLE_FILES[role]} yet"))
        for name, kind, rt in entries:
            if kind == "unavailable":
                rows.append({"method": name, "kind": kind, "note": rt})
                continue
            try:
                q = peers.quality(rt, task, names, images)
                speed = measure(lambda r=rt: r.infer(frame), warmup=1, repeats=max(3, options.repeats // 2))
            finally:
                rt.close()
            rows.append({"method": name, "kind": kind, **q, "median_ms": speed.median_ms, "fps": speed.fps})
            log(
                f"  {task:8s} {name:28s} PSNR {q['psnr_output']:6.2f} dB  SSIM {q['ssim_output']:.3f}  {speed.fps:7.1f} FPS"
            )
        out["tasks"][task] = rows
    return out


def preset_rows(options: BenchOptions, log: Log) -> list[dict[str, Any]]:
    from qdr_core.bench.scaling import preset_scaling

    width, height = _headline(options)
    rows = []
    repeats = max(5, options.repeats // 2)
    # The quick set times presets at one thread count: the size trend, not the thread trend.
    for t in options.threads[:1] if options.mode == "quick" else options.threads:
        for r in preset_scaling(options.presets, t, width, height, repeats, options.cache_dir):
            rows.append(r)
            log(
                f"  {r['preset']} {t}t: {r['gmacs']:.2f} GMAC, FP32 {r['fp32_median_ms']:.1f} ms, INT8 {r['int8_median_ms']:.1f} ms "
                f"({r['int8_ms_per_gmac']:.2f} ms/GMAC, x{r['int8_speedup']:.2f})"
            )
    return rows


def node_step(options: BenchOptions, models: dict[str, ModelFile], log: Log) -> dict[str, Any]:
    from qdr_core.bench import node

    width, height = _headline(options)
    threads = max(options.threads)
    model = models["int8_cpu"].path
    pipe = node.frame_pipeline(model, width, height, threads, repeats=max(options.repeats, 10))
    log(
        f"  frame pipeline (bgr8 decode + infer + encode) {pipe['pipeline']['median_ms']:.1f} ms vs bare "
        f"{pipe['bare']['median_ms']:.1f} ms: FPS ratio {pipe['fps_ratio']:.3f}, latency x{pipe['latency_ratio']:.3f}"
    )
    out: dict[str, Any] = {"frame_pipeline": pipe}
    if not options.ros_node:
        out["ros_node"] = {"status": "skipped", "note": "--no-ros-node"}
        log("  ROS node (benchmarks/node_vs_runtime.py, LARGE_DATA transport): skipped — --no-ros-node")
        runs = {}
    elif options.mode == "quick":  # one short round; the full set: the script's 3 rounds of 8 s
        runs = {"ros_node": ("LARGE_DATA transport", {"seconds": 3.0, "rounds": 1})}
    else:
        # Measured with the transport docs/ros_node.md prescribes for 640x480+ frames; also in
        # throughput mode (one frame per core, one thread each: more frames/s, more latency) and with
        # Fast DDS's default transport, to show what not setting it costs.
        runs = {
            "ros_node": ("LARGE_DATA transport", {}),
            "ros_node_parallel_frames": (
                f"LARGE_DATA, parallel_frames {threads} x 1 thread",
                {"parallel_frames": threads, "node_threads": 1},
            ),
            "ros_node_default_transport": ("default transport", {"transport": "default"}),
        }
    for key, (label, kwargs) in runs.items():
        kwargs = {"seconds": 8.0, "rounds": 3, **kwargs}
        out[key] = r = node.ros_node(str(Path(model).resolve()), threads, **kwargs)
        ratio = (r.get("summary") or {}).get("fps_ratio")
        log(
            f"  ROS node (benchmarks/node_vs_runtime.py, {label}): {r['status']}"
            + (f", FPS ratio {ratio:.3f}" if ratio else "")
            + (f" — {r.get('note')}" if r.get("note") else "")
        )
    return out


def stream_step(options: BenchOptions, models: dict[str, ModelFile], log: Log) -> dict[str, Any]:
    """The task's shipped streaming file (``models/<task>/stream/int8_cpu.onnx``, the node's default
    where it exists) restoring a stream (flow, warp and state included) against its single-frame
    file, interleaved, 1 thread, at the headline size: issue #14's compute row."""
    from qdr_core.bench.scaling import stream_pair_timing
    from qdr_core.node.params import shipped_model

    stream = Path(options.models_dir) / shipped_model(options.task, "int8_cpu", streaming=True)
    single = models["int8_cpu"]
    note = None
    if not stream.is_file():
        note = f"no {stream}"
    elif single.source != "shipped":
        note = f"no shipped single-frame {options.task} file"
    if note:
        log(f"  streaming model: not timed ({note})")
        return {"status": "skipped", "note": note}
    width, height = _headline(options)
    row = stream_pair_timing(single.path, str(stream), 1, width, height, max(options.repeats, 10))
    log(
        f"  {stream} vs {single.path}: MACs x{row['macs_ratio']:.3f}, {row['stream_median_ms']:.1f} / "
        f"{row['single_median_ms']:.1f} ms = x{row['time_ratio']:.3f}"
    )
    return {"status": "ok", **row}


# -- the suite ------------------------------------------------------------------------------------------


def _models(options: BenchOptions, result: dict[str, Any], log: Log) -> dict[str, ModelFile]:
    """The model file of each role (shipped, else a stand-in), recorded in ``result``."""
    models = resolve_models(options.task, options.models_dir, options.preset, options.cache_dir)
    result["models"] = {role: asdict(m) for role, m in models.items()}
    if any(m.source != "shipped" for m in models.values()):
        result["models_note"] = (
            f"not every models/{options.task}/ file exists yet: roles marked 'stand-in' are random-weight {options.preset} "
            "models exported and quantized with the project's exporters (same architecture and op types, so the same "
            "speed; their quality is meaningless and is never reported)"
        )
    for role, m in models.items():
        log(f"  model {role:9s} {m.source:18s} {m.path}")
    return models


def _runnable(specs: list[RuntimeSpec], result: dict[str, Any], log: Log) -> list[RuntimeSpec]:
    """The runtimes this machine can run; the others go to ``result["unavailable"]`` with why."""
    runnable, result["unavailable"] = [], []
    for spec in specs:
        reason = unavailable_reason(spec)
        if reason:
            result["unavailable"].append({"runtime": spec.key, "label": spec.label, "reason": reason})
            log(f"  {spec.key}: unavailable ({reason})")
        else:
            runnable.append(spec)
    return runnable


def run_suite(options: BenchOptions, log: Log = _stderr, command: str = "") -> dict[str, Any]:
    from qdr_core.bench.scaling import pixel_scaling

    started = time.perf_counter()
    info = machine.machine_info()
    note = machine.load_note(info["loadavg"], info["usable_cpus"])
    result: dict[str, Any] = {"schema": SCHEMA, "mode": options.mode, "command": command}
    result |= {"options": asdict(options), "machine": info, "load_note": note}
    result |= {"loadavg_start": info["loadavg"], "errors": {}}
    log(f"qdr bench ({options.mode}) on {info['cpu_model']} [{', '.join(info['isa'])}]; {note}")
    models = _models(options, result, log)
    runnable = _runnable(options.specs(), result, log)

    def step(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        log(f"[{name}]")
        t0 = time.perf_counter()
        try:
            value = fn(*args)
        except Exception as exc:  # one broken step must not lose the others' numbers
            result["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"  {name} failed: {exc}\n{traceback.format_exc(limit=3)}")
            value = None
        result.setdefault("step_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        return value

    rows = step("runtimes (isolated subprocess per configuration)", grid, options, models, runnable, log)
    result["runtimes"] = rows or []
    result["ratios"] = step("ratios (interleaved, one process)", ratios, options, models, log)
    result["roofline"] = step("roofline", roofline_step, options, log) if options.roofline else None
    if result["ratios"]:
        args = (result["ratios"], result["roofline"], models["int8_cpu"], result["runtimes"])
        result["efficiency"] = step("efficiency", efficiency, *args)
    result["scaling"] = {"pixels": pixel_scaling(result["runtimes"])}
    for fit in result["scaling"]["pixels"]:
        log(
            f"  {fit['runtime']:16s} {fit['threads']}t: {fit['ms_per_megapixel']:.1f} ms/MP + "
            f"{fit['intercept_ms']:.1f} ms (r2 {fit['r2']:.3f})"
        )
    if options.presets:
        result["scaling"]["presets"] = step("presets", preset_rows, options, log)
    if options.stream:
        result["stream"] = step("streaming vs single-frame (issue #14)", stream_step, options, models, log)
    if options.node:
        result["node"] = step("node vs runtime", node_step, options, models, log)
    if options.peers:
        result["peers"] = step("peers", peer_comparison, options, log)
    result["targets"] = targets(result)
    result["loadavg_end"] = machine.load_average()
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def roofline_step(options: BenchOptions, log: Log) -> dict[str, Any]:
    from qdr_core.bench.roofline import measure_roofline

    r = measure_roofline(options.threads, quick=options.mode == "quick")
    for k in r["kernels"]:
        log(f"  {k['kernel']:30s} {k['threads']}t {k['median_ms']:8.2f} ms {k['gops']:8.1f} GOPS")
    return r


def default_output_name(options: BenchOptions) -> str:
    suffix = "" if options.device == "cpu" else f"_{options.device}"
    return f"bench_{options.mode}{suffix}"
