"""``qdr bench``: speed, memory, efficiency and quality of every runtime, the node path and peers.

One module per concern:

* ``machine``  — what the numbers were measured on (CPU, ISA, load average, versions);
* ``timing``   — warm-up + median / p95 of N runs, and interleaved A/B timing for ratios;
* ``models``   — which model files are benchmarked (shipped, else clearly labelled stand-ins);
* ``runtimes`` — the runtime configurations, and why one cannot run on this machine;
* ``worker``   — one subprocess per (runtime, resolution, threads): load time, latency, peak RSS
  (``memory``);
* ``roofline`` — measured int8 / fp32 peak of this CPU (onnxruntime MatMulInteger / QLinearConv);
* ``scaling``  — ms per megapixel fit and time per preset (MACs);
* ``node``     — node (frame pipeline) vs bare runtime, plus ``benchmarks/node_vs_runtime.py``;
* ``peers``    — Zero-DCE and classical OpenCV baselines, quality and speed on the same frames;
* ``targets``  — the issue's targets as data, checked against a result;
* ``report``   — table, JSON, PNG;
* ``suite``    — runs the above in order from one ``BenchOptions``.
"""
