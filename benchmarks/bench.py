"""Benchmark: suite wall time vs its floor, harness overhead per call, oracle speed and memory.

    .venv/bin/python benchmarks/bench.py [--frameworks torch,tensorflow,jax,paddle] [--big]

1. For each framework alone: worker start (import) time, then the whole case set. The
   harness overhead per (case, API) pair is (case-loop time - Σ framework call time) / pairs:
   the cost of building arrays, the oracle, IPC, the support check, comparison and writing
   rows. Pairs the API cannot take (unsupported) count too: they cost a round trip.
2. Oracle on a 2×19×512×1024 segmentation batch (float32 input, 10 % ignored): seconds and
   peak traced memory for value, gradient and error magnitude (``--big``).
Numbers go to stdout as a Markdown table; the README quotes a run of this script.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from conformance import cases, oracle, results, runner

ROOT = Path(__file__).resolve().parent.parent


def bench_frameworks(frameworks: list[str]) -> None:
    selected = cases.load_paths([ROOT / "cases"])
    print(
        f"cases: {len(selected)} expanded from cases/ ({platform.processor() or 'cpu'}, "
        f"{platform.python_version()})\n"
    )
    print(
        "| framework | worker start s | case loop s | (case, API) pairs | of them called "
        "| Σ call s | overhead ms/pair |"
    )
    print("|---|---|---|---|---|---|---|")
    for fw in frameworks:
        with tempfile.TemporaryDirectory() as tmp:
            env = runner.run(selected, Path(tmp), frameworks=[fw])
            frame = results.load(Path(tmp))
        info = env.get(fw, {})
        if "skipped" in info:
            print(f"| {fw} | skipped: {info['skipped']} | | | | | |")
            continue
        pairs = frame[frame.output == "loss"]
        called = pairs[pairs.call.notna()]  # unsupported pairs make no call
        call_s = float(called.seconds.astype(float).sum())
        loop_s = float(env["cases_seconds"])
        overhead = (loop_s - call_s) / max(len(pairs), 1) * 1000
        print(
            f"| {fw} | {info['start_seconds']:.2f} | {loop_s:.2f} | {len(pairs)} | "
            f"{len(called)} | {call_s:.2f} | {overhead:.2f} |"
        )


def bench_together(frameworks: list[str]) -> None:
    """The default run (all frameworks at once, default modes) against its floor: the
    slowest framework's own import plus the time spent in its calls."""
    selected = cases.load_paths([ROOT / "cases"])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        env = runner.run(selected, Path(tmp), frameworks=frameworks)
        wall = time.perf_counter() - started
        frame = results.load(Path(tmp))
    loss_rows = frame[(frame.output == "loss") & frame.call.notna()]
    floors = {
        fw: float(env[fw].get("start_seconds", 0.0))
        + float(loss_rows[loss_rows.framework == fw].seconds.astype(float).sum())
        for fw in frameworks
        if "skipped" not in env.get(fw, {})
    }
    slowest = max(floors, key=floors.__getitem__)
    print(
        f"\ndefault run, {', '.join(frameworks)} together, modes {', '.join(env['modes'])}: "
        f"{len(frame)} rows\n"
    )
    print("| wall s | floor s (slowest framework: import + its calls) | wall / floor |")
    print("|---|---|---|")
    print(f"| {wall:.1f} | {floors[slowest]:.1f} ({slowest}) | {wall / floors[slowest]:.2f} |")


def bench_oracle() -> None:
    rng = np.random.default_rng(0)
    shape = (2, 19, 512, 1024)
    x = (rng.normal(0, 3, size=shape)).astype(np.float32)
    t = rng.integers(0, 19, size=(2, 512, 1024))
    t[rng.random(t.shape) < 0.1] = 255
    kw = {"ignore_index": 255, "reduction": "mean", "weight": np.linspace(0.5, 2, 19)}
    print(
        f"\noracle on {shape} float32 ({x.size / 1e6:.1f} M elements, 10 % ignored, weighted "
        "mean):\n"
    )
    print("| function | seconds | peak traced MiB |")
    print("|---|---|---|")
    spec = oracle.LOSSES["cross_entropy"]
    for name, fn in (("value", spec.value), ("grad", spec.grad), ("magnitude", spec.magnitude)):
        tracemalloc.start()
        start = time.perf_counter()
        fn(x, t, **kw)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"| cross_entropy {name} | {seconds:.2f} | {peak:.0f} |")
    print(
        f"\ninput itself: {x.nbytes / 2**20:.0f} MiB float32, "
        f"{x.size * 8 / 2**20:.0f} MiB as float64"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frameworks", default=",".join(runner.FRAMEWORKS))
    p.add_argument("--big", action="store_true", help="also time the oracle on 2×19×512×1024")
    args = p.parse_args()
    frameworks = [f for f in args.frameworks.split(",") if f]
    bench_frameworks(frameworks)
    bench_together(frameworks)
    if args.big:
        bench_oracle()
    print(json.dumps({"numpy": np.__version__}))


if __name__ == "__main__":
    main()
