"""Benchmark: suite wall time vs its floor, harness overhead per call, oracle speed and memory.

    .venv/bin/python benchmarks/bench.py [--frameworks torch,tensorflow,jax,paddle] [--big]

1. For each framework alone: worker start (import) time, then the whole case set. The
   harness overhead per (case, API) pair is (case-loop time - Σ framework call time) / pairs:
   the cost of building arrays, the oracle, IPC, the support check, comparison and writing
   rows. Pairs the API cannot take (unsupported) count too: they cost a round trip.
2. Oracle on a 2×19×512×1024 segmentation batch (float32 input, 10 % ignored, ``--big``):
   seconds and peak traced memory of value, gradient and error magnitude called one by one,
   and of ``cross_entropy_all`` (all of them in one pass) next to torch's float32 forward +
   backward on one thread, with the peak as a factor of the input's float64 size.
Numbers go to stdout as a Markdown table; the README quotes a run of this script.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from conformance import cases, oracle, results, runner
from conformance.oracle.cross_entropy import cross_entropy_all

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
        loop_s = float(env["cases_seconds"]) - float(info["start_seconds"])  # after the start
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


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    """Fastest of ``repeats`` timed calls (the first also pays first-touch page faults)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _traced_peak(run: Callable[[], object]) -> float:
    """Peak traced memory of one call, MiB (tracemalloc sees NumPy's allocations)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _torch_seconds(x: np.ndarray, t: np.ndarray, weight: np.ndarray, repeats: int) -> float | None:
    """Torch float32 forward + backward of F.cross_entropy on one thread; None without torch."""
    try:
        import torch
    except ImportError as exc:
        print(f"\ntorch not installed ({exc}): no torch column")
        return None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        wt = torch.from_numpy(weight.astype(np.float32))

        def step() -> None:
            leaf = xt.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(leaf, tt, weight=wt, ignore_index=255)
            loss.backward()

        return _best_of(repeats, step)
    finally:
        torch.set_num_threads(threads)


def bench_oracle(repeats: int = 3) -> None:
    """The cross-entropy oracle on a segmentation batch against torch float32 forward +
    backward on one thread: value, gradient and magnitudes as three calls in sequence, each
    result kept, and as one ``cross_entropy_all`` pass (what runner.expected_for calls).
    Seconds are the best of ``repeats`` runs (the first run of a process also pays the page
    faults of fresh memory); the peak is that of one more run under tracemalloc."""
    rng = np.random.default_rng(0)
    shape = (2, 19, 512, 1024)
    x = (rng.normal(0, 3, size=shape)).astype(np.float32)
    t = rng.integers(0, 19, size=(2, 512, 1024))
    t[rng.random(t.shape) < 0.1] = 255
    weight = np.linspace(0.5, 2, 19)
    kw: dict[str, Any] = {"ignore_index": 255, "reduction": "mean", "weight": weight}
    f64_mib = x.size * 8 / 2**20
    spec = oracle.LOSSES["cross_entropy"]

    def three_calls() -> tuple[Any, ...]:
        return spec.value(x, t, **kw), spec.grad(x, t, **kw), spec.magnitude(x, t, **kw)

    rows: list[tuple[str, Callable[[], object]]] = [
        ("value, grad, magnitude: three calls", three_calls),
        (
            "cross_entropy_all: one pass (the runner)",
            functools.partial(cross_entropy_all, x, t, **kw),
        ),
    ]
    timed = [(name, _best_of(repeats, run), _traced_peak(run)) for name, run in rows]
    torch_s = _torch_seconds(x, t, weight, repeats)
    print(
        f"\noracle on {shape} float32 ({x.size / 1e6:.1f} M elements, 10 % ignored, weighted "
        f"mean; input {x.nbytes / 2**20:.0f} MiB float32, {f64_mib:.0f} MiB as float64), "
        f"seconds best of {repeats}; torch float32 forward + backward, one thread: "
        + ("skipped" if torch_s is None else f"{torch_s:.3f} s")
        + "\n"
    )
    print(
        "| oracle | seconds | torch seconds | ratio to torch | peak traced MiB "
        "| float64 input MiB | memory factor |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, seconds, peak in timed:
        torch_col = "skipped" if torch_s is None else f"{torch_s:.3f}"
        ratio = "" if torch_s is None else f"{seconds / torch_s:.2f}"
        print(
            f"| {name} | {seconds:.3f} | {torch_col} | {ratio} | {peak:.0f} | {f64_mib:.0f} "
            f"| {peak / f64_mib:.2f} |"
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
