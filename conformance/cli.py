"""Command line: ``conformance run | merge | validate | list | report | fuzz | ...``.

Exit status: 0 when every row is pass / unsupported / expected-error / skipped; 1 when any row
is mismatch / error / no-error / crashed / timeout (or the results file could not be written
after rows were); 2 for bad usage, invalid case files or an unwritable run directory; 3 when
``run --max-seconds`` stopped the run (resumable with ``run --resume``); 130 after Ctrl-C and
143 after SIGTERM. The last three exit once the summary and report of the rows so far are
written.
``run`` writes ``run.json`` (its selection) into the run directory before it starts; ``run
--shard``, ``run --resume`` and ``merge`` are described in conformance/shard.py.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd

from conformance import adapters, cases, results, runner, shard
from conformance import ledger as ledger_

EXIT_OK, EXIT_FAILING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_DEADLINE = 3  # --max-seconds reached: the rows so far are kept; finish with --resume
EXIT_TERMINATED = 128 + signal.SIGTERM


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number of seconds > 0")
    return value


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b)?\s*", re.IGNORECASE)


def _size(text: str) -> int:
    """argparse type: a memory size in bytes > 0, e.g. ``2G``, ``512M``, ``1.5GiB``,
    ``300MB``; K, M, G and T are powers of 1024 with or without ``B``/``iB`` (what ``ps`` and
    ``/proc`` report), a bare number is bytes."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 2G, 512M, 1.5GiB)")
    value = int(float(match[1]) * _UNITS[(match[2] or "").lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be > 0")
    return value


def _shard(text: str) -> tuple[int, int]:
    """argparse type: ``I/N`` with 1 <= I <= N."""
    try:
        return shard.parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conformance",
        description="Cross-framework conformance of loss functions against a float64 oracle.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    # The selection options default to None, so that --resume can tell which were given;
    # _selection fills in the defaults.
    r = sub.add_parser("run", help="run cases on frameworks and write a report")
    r.add_argument(
        "--cases",
        nargs="+",
        default=None,
        metavar="PATH",
        help="case files or directories (default: cases)",
    )
    r.add_argument(
        "--framework",
        default=None,
        help=f"comma-separated subset of: {', '.join(adapters.MODULES)} "
        f"(default: {','.join(runner.FRAMEWORKS)})",
    )
    r.add_argument("--device", choices=("cpu", "gpu"), default=None, help="(default: cpu)")
    r.add_argument(
        "--mode",
        default=None,
        help="execution modes, comma-separated: eager, jit (jax.jit), tf.function, "
        "tf.function-xla, to_static (paddle.jit.to_static), compile (torch.compile); "
        "'default' (the default) = " + ",".join(runner.DEFAULT_MODES) + "; 'all' = every mode",
    )
    r.add_argument(
        "-k",
        dest="keyword",
        default=None,
        help="only cases whose id contains this text (case-insensitive)",
    )
    r.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="run only the I-th of N slices of the selected cases, balanced by estimated "
        "cost (combine the N run directories with conformance merge)",
    )
    r.add_argument(
        "--out", type=Path, default=None, help="run directory (default: reports/<UTC timestamp>)"
    )
    r.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="finish an interrupted run: keep the rows RUN_DIR/results.jsonl holds, run the "
        "calls that have none, with the options RUN_DIR/run.json records",
    )
    r.add_argument(
        "--timeout",
        type=_seconds,
        default=120.0,
        help="seconds one call may take before its worker is killed (default 120)",
    )
    r.add_argument(
        "--start-timeout",
        type=_seconds,
        default=300.0,
        help="seconds a worker may take to import its framework (default 300)",
    )
    r.add_argument(
        "--max-seconds",
        type=_seconds,
        default=None,
        metavar="S",
        help="stop taking new calls S seconds after the command started, as on Ctrl-C: the "
        "calls in flight finish, the summary and report are written, exit 3; finish with "
        "--resume RUN_DIR (which takes --max-seconds again). Default: no limit",
    )
    r.add_argument(
        "--max-worker-mem",
        type=_size,
        default=None,
        metavar="SIZE",
        help="memory one framework worker may use, e.g. 2G, 512M, 1.5GiB (K/M/G/T: powers "
        f"of 1024): a case estimated to need more ({runner.CALL_MEMORY_BASE >> 20} MiB + "
        f"{runner.CALL_MEMORY_FACTOR} × its arrays + the worker's memory after import) is "
        "skipped with the reason; a worker whose "
        "resident memory grows past it during a call is killed and that call's rows are "
        "crashed (Linux: read from /proc). Default: no limit",
    )
    r.add_argument(
        "--max-elements",
        type=_positive_int,
        default=None,
        help=f"largest input a case may declare (default {cases.DEFAULT_MAX_ELEMENTS})",
    )
    r.add_argument(
        "--ledger",
        nargs="+",
        default=None,
        metavar="PATH",
        help="known-divergence ledger files (default: the ledger files among --cases)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="also fail on rows the ledger covers (known) and on stale ledger entries",
    )
    r.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when rows fail (the report still shows them)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    m = sub.add_parser(
        "merge",
        help="combine the run directories of the shards of one run (run --shard I/N) into "
        "one, with the summary and report an unsharded run would have",
    )
    m.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    m.add_argument("--out", type=Path, required=True, help="the merged run directory")
    m.add_argument(
        "--cases",
        nargs="+",
        default=None,
        metavar="PATH",
        help="where the known-divergence ledger is read from (default: the --cases the "
        "shards recorded, else cases)",
    )
    m.add_argument(
        "--ledger",
        nargs="+",
        default=None,
        metavar="PATH",
        help="known-divergence ledger files (default: the --ledger the shards recorded, "
        "else the ledger files among --cases)",
    )
    m.add_argument(
        "--force",
        action="store_true",
        help="merge even when shards are missing or repeated, their options or versions "
        "differ, or one is incomplete (each is noted in summary.json)",
    )
    m.add_argument("--strict", action="store_true", help="as for run")
    m.add_argument("--exit-zero", action="store_true", help="as for run")

    v = sub.add_parser("validate", help="check case files; exit 2 on any problem")
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument("--max-elements", type=_positive_int, default=cases.DEFAULT_MAX_ELEMENTS)

    ls = sub.add_parser("list", help="list expanded case ids (or adapter entries)")
    ls.add_argument("paths", nargs="*", default=["cases"], metavar="PATH")
    ls.add_argument(
        "--entries",
        action="store_true",
        help="list each framework's API entries and what they declare",
    )

    cen = sub.add_parser(
        "census",
        help="list each framework's public losses and whether an entry covers them; "
        "exit 1 when one is neither covered nor out of scope",
    )
    cen.add_argument(
        "--framework",
        default=",".join(runner.FRAMEWORKS),
        help="comma-separated subset of: " + ", ".join(adapters.MODULES),
    )
    cen.add_argument("--all", action="store_true", help="also list the covered ones")

    rep = sub.add_parser(
        "report",
        help="regenerate report.html, summary.json/.md, junit.xml, results.csv/.parquet "
        "from a run directory's results.jsonl",
    )
    rep.add_argument("run_dir", type=Path)

    mig = sub.add_parser(
        "migrate",
        help="porting advice: for every entry of framework A, the entries of B that compute "
        "the same loss and, per case group, whether B agrees, differs (how and why) or cannot",
    )
    mig.add_argument("--from", dest="source", required=True, metavar="A",
                     help="torch, tensorflow (keras), jax (optax) or paddle")  # fmt: skip
    mig.add_argument("--to", dest="target", required=True, metavar="B", help="as --from")
    mig.add_argument(
        "run_dir",
        nargs="?",
        type=Path,
        help="a run holding both frameworks' eager rows (default: run A and B now, eager "
        "mode, into reports/migrate-<A>-<B>/<UTC timestamp>)",
    )
    mig.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where migrate-A-to-B.md/.html go (default: the run directory)",
    )
    mig.add_argument(
        "--cases", nargs="+", default=["cases"], metavar="PATH",
        help="case files or directories for the run made without RUN_DIR (default: cases)",
    )  # fmt: skip

    dif = sub.add_parser(
        "diff",
        help="compare two runs (an upgrade, or CPU against GPU): regressions, fixes, changed "
        "error figures, rows in one run only, environment changes; exit 1 on a regression",
    )
    dif.add_argument("old", type=Path, metavar="OLD")
    dif.add_argument("new", type=Path, metavar="NEW")
    dif.add_argument(
        "--threshold",
        type=float,
        default=2.0,
        help="a max ULP or max relative error that changed by more than this factor is "
        "listed as changed (default 2)",
    )
    dif.add_argument("--md", type=Path, default=None, help="also write the Markdown here")
    dif.add_argument("--html", type=Path, default=None, help="also write an HTML page here")

    fz = sub.add_parser(
        "fuzz",
        help="search random valid cases for failures no profile or ledger entry explains",
    )
    fz.add_argument(
        "--budget",
        type=_seconds,
        default=300.0,
        help="seconds of search, not counting the workers' start (default 300)",
    )
    fz.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    fz.add_argument(
        "--framework",
        default=",".join(runner.FRAMEWORKS),
        help="comma-separated subset of: " + ", ".join(adapters.MODULES),
    )
    fz.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where findings are saved (default: reports/fuzz-<UTC timestamp>)",
    )
    fz.add_argument(
        "--cases",
        nargs="+",
        default=["cases"],
        metavar="PATH",
        help="where the known-divergence ledger is read from (default: cases)",
    )
    return p


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:  # e.g. under a directory this user cannot search: loading says why
        return True
    return True


def _files(paths: Sequence[str]) -> list[Path]:
    missing = [p for p in paths if not _exists(p)]
    if missing:
        raise SystemExit(_usage(f"no such file or directory: {', '.join(missing)}"))
    files = cases.find_case_files(paths)
    if not files:
        raise SystemExit(_usage(f"no .yaml case files under {', '.join(paths)}"))
    return files


def _load(
    paths: Sequence[str], max_elements: int, ledger_paths: Sequence[str] | None = None
) -> tuple[list[cases.Case], ledger_.Ledger]:
    """Cases and ledger entries; every problem in either is reported before raising."""
    files = _files(paths)
    errors: list[cases.CaseError] = []
    loaded: list[cases.Case] = []
    known = ledger_.Ledger()
    try:
        loaded = cases.load_paths(files, max_elements=max_elements)
    except cases.CaseErrors as exc:
        errors.extend(exc.errors)
    try:
        if ledger_paths is None:  # the case files were read above; say nothing twice
            known = ledger_.load_paths(files, unreadable_ok=True)
        else:
            known = ledger_.load_paths(_files(ledger_paths))
    except cases.CaseErrors as exc:
        errors.extend(exc.errors)
    if errors:
        raise cases.CaseErrors(errors)
    return loaded, known


def _usage(message: str) -> int:
    print(f"conformance: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r[{bar}] {done}/{total} {label[:60]:<60}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` instead of raising, for as long as the block runs.

    Nothing is interrupted half-way: the calls in flight finish, and the summary and report
    are still written, however many signals arrive. (Only the main thread may install
    handlers; elsewhere the block runs without them.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if not received:
            print(
                "\nstopping: the calls in flight finish, then the summary and report are written",
                file=sys.stderr,
            )
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _deadline(
    seconds: float | None, began: float, stop: threading.Event, reached: list[float]
) -> Iterator[None]:
    """``--max-seconds``: set ``stop`` once ``seconds`` have passed since ``began``
    (``time.monotonic()``), as Ctrl-C does, and note in ``reached`` the seconds passed; the
    timer is cancelled when the block ends (the run finished first)."""
    if seconds is None:
        yield
        return

    def expire() -> None:
        reached.append(time.monotonic() - began)
        print(
            f"\n--max-seconds {seconds:g} reached: the calls in flight finish, then the "
            "summary and report are written",
            file=sys.stderr,
        )
        stop.set()

    timer = threading.Timer(max(seconds - (time.monotonic() - began), 0.0), expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _prepare_run_dir(run_dir: Path) -> str | None:
    """Create the run directory; the reason it cannot hold this run's results, or None."""
    target = run_dir / results.RESULTS_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size > 0:
            return f"{target} already holds results; choose another --out or remove it"
        with target.open("ab"):
            pass
    except OSError as exc:
        where = exc.filename or run_dir
        return f"cannot write the run directory {run_dir}: {where}: {exc.strerror or exc}"
    return None


def _write_outputs(
    run_dir: Path, environment: dict[str, Any], known: ledger_.Ledger
) -> tuple[dict[str, Any], list[str]]:
    """summary.json, results.csv and report.html; each one that fails is named, not fatal."""
    from conformance import report

    problems: list[str] = []
    try:
        frame = results.load(run_dir)
    except OSError as exc:
        problems.append(f"cannot read {run_dir / results.RESULTS_FILE}: {exc.strerror or exc}")
        frame = pd.DataFrame(columns=list(results.COLUMNS))
    summary = results.summarize(frame, environment)
    summary["stale_ledger"] = known.stale(frame)
    summary["known_by_entry"] = {
        str(ref): int(n) for ref, n in frame["ledger"].dropna().value_counts().sort_index().items()
    }
    summary["ledger_entries"] = len(known.entries)
    try:
        results.write_summary(run_dir, summary)
    except OSError as exc:
        problems.append(f"could not write {run_dir / results.SUMMARY_FILE}: {exc.strerror or exc}")
        return summary, problems
    # The findings, the report and the machine formats, all from the saved rows.
    try:
        written = report.write_all(run_dir)
    except OSError as exc:
        problems.append(f"cannot read {run_dir / results.RESULTS_FILE}: {exc.strerror or exc}")
        return summary, problems
    for name, outcome in written:
        if isinstance(outcome, OSError):
            problems.append(f"could not write {run_dir / name}: {outcome.strerror or outcome}")
    return summary, problems


def parse_frameworks(text: str) -> list[str] | str:
    """The frameworks ``--framework`` names, each once, or why it names something else."""
    frameworks = list(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in frameworks if f not in adapters.MODULES]
    if unknown or not frameworks:
        return (
            f"unknown framework {', '.join(unknown) or '(none)'} "
            f"(allowed: {', '.join(adapters.MODULES)})"
        )
    return frameworks


def parse_modes(text: str) -> list[str] | str:
    """The modes ``--mode`` names, or why it names something else."""
    available: dict[str, None] = {"eager": None}
    for name in adapters.MODULES:
        for entry in adapters.load(name).ENTRIES:
            available.update(dict.fromkeys(sorted(entry.modes)))
    words = [w.strip() for w in text.split(",") if w.strip()]
    chosen: list[str] = []
    for word in words:
        if word == "default":
            chosen.extend(runner.DEFAULT_MODES)
        elif word == "all":
            chosen.extend(available)
        elif word in available:
            chosen.append(word)
        else:
            return f"unknown mode {word!r} (allowed: default, all, {', '.join(available)})"
    return list(dict.fromkeys(chosen)) or "--mode names no mode"


# Where each field of shard.Selection is in the parsed ``run`` arguments.
_SELECTION_ARGS = {
    "cases": "cases",
    "ledger": "ledger",
    "keyword": "keyword",
    "max_elements": "max_elements",
    "frameworks": "framework",
    "modes": "mode",
    "device": "device",
    "shard": "shard",
}


def _selection(args: argparse.Namespace) -> shard.Selection | str:
    """The selection the ``run`` options make (defaults for those not given), or why not."""
    frameworks = parse_frameworks(
        ",".join(runner.FRAMEWORKS) if args.framework is None else args.framework
    )
    if isinstance(frameworks, str):
        return frameworks
    modes = parse_modes("default" if args.mode is None else args.mode)
    if isinstance(modes, str):
        return modes
    return shard.Selection(
        cases=tuple(["cases"] if args.cases is None else args.cases),
        ledger=None if args.ledger is None else tuple(args.ledger),
        keyword=args.keyword,
        max_elements=cases.DEFAULT_MAX_ELEMENTS if args.max_elements is None else args.max_elements,
        frameworks=tuple(frameworks),
        modes=tuple(modes),
        device="cpu" if args.device is None else args.device,
        shard=args.shard,
    )


def _resumed_selection(args: argparse.Namespace, given: shard.Selection) -> shard.Selection | str:
    """The selection ``--resume RUN_DIR`` runs: the one RUN_DIR records (the options given
    must agree with it), else the one given; or why it cannot be resumed."""
    run_dir: Path = args.resume
    if args.out is not None:
        return "--resume names the run directory; drop --out"
    if not (run_dir / results.RESULTS_FILE).is_file():
        return f"{run_dir} has no {results.RESULTS_FILE}: nothing to resume"
    try:
        recorded = shard.read_selection(run_dir)
    except shard.Refused as exc:
        return str(exc)
    if recorded is None:
        print(
            f"conformance: warning: {run_dir} records no options ({shard.RUN_FILE}); "
            "resuming with the options given",
            file=sys.stderr,
        )
        return given
    named = [n for n, dest in _SELECTION_ARGS.items() if getattr(args, dest) is not None]
    changed = given.differing(recorded, named)
    if changed:
        return (
            f"--resume reuses the options {run_dir / shard.RUN_FILE} records; "
            + "; ".join(
                f"{shard.OPTIONS[n]} {given.show(n)} was given, the run has {recorded.show(n)}"
                for n in changed
            )
            + " (drop these options, or start a new run)"
        )
    for problem in (
        parse_frameworks(",".join(recorded.frameworks)),
        parse_modes(",".join(recorded.modes)),
    ):
        if isinstance(problem, str):
            return f"{run_dir / shard.RUN_FILE}: {problem}"
    return recorded


def _run(args: argparse.Namespace) -> int:
    began = time.monotonic()  # --max-seconds counts from here
    chosen = _selection(args)
    if isinstance(chosen, str):
        return _usage(chosen)
    if args.resume is not None:
        chosen = _resumed_selection(args, chosen)
        if isinstance(chosen, str):
            return _usage(chosen)
    selected, known = _load(chosen.cases, chosen.max_elements, chosen.ledger)
    if chosen.keyword:
        selected = [c for c in selected if chosen.keyword.lower() in c.id.lower()]
        if not selected:
            return _usage(f"-k {chosen.keyword!r} matches no case")
    if chosen.shard is not None:
        total = len(selected)
        selected = shard.select(selected, chosen.shard, chosen.frameworks, chosen.modes)
        print(f"shard {shard.shard_text(chosen.shard)}: {len(selected)} of {total} cases")
    run_dir: Path = args.resume or args.out or runner.timestamp_dir(Path("reports"))
    resumable = None
    previous: dict[str, Any] = {}
    if args.resume is None:
        problem = _prepare_run_dir(run_dir)
        if problem:
            return _usage(problem)
    else:
        saved = (results.load_summary(run_dir)[0] or {}).get("environment")
        previous = saved if isinstance(saved, dict) else {}
        try:
            resumable = shard.prepare_resume(run_dir)
        except OSError as exc:
            where = exc.filename or run_dir / results.RESULTS_FILE
            return _usage(f"cannot resume {run_dir}: {where}: {results.os_problem(exc)}")
        dropped = f", {resumable.dropped} row(s) of unfinished calls dropped"
        cut = f", a cut-off last line ({resumable.cut} bytes) dropped"
        print(
            f"resuming {run_dir}: {resumable.kept} rows kept"
            + (dropped if resumable.dropped else "")
            + (cut if resumable.cut else "")
        )
    try:
        shard.write_selection(run_dir, chosen)
    except OSError as exc:
        where = exc.filename or run_dir
        return _usage(f"cannot write the run directory {run_dir}: {where}: {exc.strerror or exc}")
    show = not args.no_progress and sys.stderr.isatty()
    stop, received = threading.Event(), list[int]()
    reached: list[float] = []
    with _stop_on_signals(stop, received):
        with _deadline(args.max_seconds, began, stop, reached):
            environment = runner.run(
                selected,
                run_dir,
                frameworks=chosen.frameworks,
                device=chosen.device,
                timeout=args.timeout,
                start_timeout=args.start_timeout,
                progress=_progress if show else None,
                stop=stop,
                ledger=known,
                modes=chosen.modes,
                done=resumable.done if resumable else frozenset(),
                max_worker_mem=args.max_worker_mem,
            )
        if reached and not received and "interrupted" in environment:
            environment["deadline"] = (
                f"--max-seconds {args.max_seconds:g} reached after {reached[0]:.1f} s"
            )
        if chosen.shard is not None:
            environment["shard"] = shard.shard_text(chosen.shard)
        if resumable is not None:
            environment = shard.resumed_environment(previous, environment, resumable)
            for note in environment.get("notes", []):
                print(f"conformance: warning: {note}", file=sys.stderr)
        summary, problems = _write_outputs(run_dir, environment, known)
    counts = ", ".join(f"{n} {v}" for v, n in summary["by_verdict"].items() if n)
    print(f"{len(selected)} cases, {summary['rows']} rows: {counts or 'nothing ran'}")
    for problem in problems:
        print(f"conformance: error: {problem}", file=sys.stderr)
    if not problems:
        print(f"report: {run_dir / 'report.html'}")
    if "write_error" in environment:
        print(f"conformance: error: {environment['write_error']}", file=sys.stderr)
        return EXIT_FAILING if summary["rows"] else EXIT_USAGE
    if "deadline" in environment:
        print(
            f"conformance: --max-seconds {args.max_seconds:g} reached: "
            f"{environment['interrupted']}; rows so far are kept; "
            f"finish with: conformance run --resume {run_dir}",
            file=sys.stderr,
        )
        return EXIT_DEADLINE
    if "interrupted" in environment:
        print(f"interrupted: {environment['interrupted']}; rows so far are kept", file=sys.stderr)
        return EXIT_TERMINATED if signal.SIGTERM in received else EXIT_INTERRUPTED
    if problems:
        return EXIT_FAILING if summary["rows"] else EXIT_USAGE
    return _verdict_exit(summary, strict=args.strict, exit_zero=args.exit_zero)


def _merge(args: argparse.Namespace) -> int:
    """Merge shard run directories (conformance/shard.py) into ``--out`` and write its
    summary and report from the merged rows: exit 0/1 by the rows as ``run`` does, 2 when
    the inputs cannot be merged or ``--out`` cannot be written."""
    try:
        plan = shard.plan_merge(args.run_dirs, force=args.force)
    except shard.Refused as exc:
        return _usage(str(exc))
    recorded = plan.selection
    ledger_paths = args.ledger
    if ledger_paths is None and args.cases is None and recorded is not None:
        ledger_paths = recorded.ledger
    paths = ledger_paths or args.cases or (recorded.cases if recorded else ["cases"])
    known = ledger_.load_paths(_files(paths))
    out: Path = args.out
    problem = _prepare_run_dir(out)
    if problem:
        return _usage(problem)
    try:
        plan.write(out)
    except OSError as exc:
        return _usage(f"cannot write {exc.filename or out}: {results.os_problem(exc)}")
    environment = plan.environment()
    for note in environment.get("notes", []):
        print(f"conformance: warning: {note}", file=sys.stderr)
    summary, problems = _write_outputs(out, environment, known)
    counts = ", ".join(f"{n} {v}" for v, n in summary["by_verdict"].items() if n)
    print(f"{len(plan.inputs)} run(s) merged, {summary['rows']} rows: {counts or 'none'}")
    for problem in problems:
        print(f"conformance: error: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"report: {out / 'report.html'}")
    return _verdict_exit(summary, strict=args.strict, exit_zero=args.exit_zero)


def _verdict_exit(summary: dict[str, Any], *, strict: bool, exit_zero: bool) -> int:
    """1 when rows fail (and, under --strict, when known rows or stale entries exist)."""
    known = summary["by_verdict"].get(results.Verdict.KNOWN.value, 0)
    stale = summary["stale_ledger"]
    if known:
        note = "" if strict else " (not failing; --strict fails them)"
        print(f"{known} row(s) are known divergences covered by the ledger{note}:")
        for ref, count in summary.get("known_by_entry", {}).items():
            print(f"  {ref} ({count} row(s))")
    for entry in stale:
        print(
            f"stale ledger entry {entry['entry']} ({entry['api']} {entry['case']}): "
            f"{entry['reason']}",
            file=sys.stderr,
        )
    failing = summary["failing"] or (strict and (known or stale))
    return EXIT_FAILING if failing and not exit_zero else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    loaded, known = _load(args.paths, args.max_elements)
    files = {c.file for c in loaded}
    print(
        f"{len(files)} file(s), {len(loaded)} case(s) after expansion: OK; "
        f"{len(known.entries)} known-divergence ledger entr"
        + ("y" if len(known.entries) == 1 else "ies")
    )
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if args.entries:
        for name in adapters.MODULES:
            module = adapters.load(name)
            for e in module.ENTRIES:
                print(
                    f"{name:<11} {e.api:<55} loss={e.loss} targets={','.join(sorted(e.targets))}"
                    f" params={','.join(sorted(e.params)) or '-'}"
                    f" reductions={','.join(sorted(e.reductions))}"
                    f" modes={','.join(sorted(e.modes))}"
                )
            for loss, reason in getattr(module, "OUT_OF_SCOPE", ()):
                print(f"{name:<11} {'(none)':<55} loss={loss} out of scope: {reason}")
            for api, reason in getattr(module, "OUT_OF_SCOPE_APIS", ()):
                print(f"{name:<11} {api:<55} out of scope: {reason}")
        return EXIT_OK
    for case in _load(args.paths, cases.DEFAULT_MAX_ELEMENTS)[0]:
        print(f"{case.id}\t{case.file}:{case.line}")
    return EXIT_OK


def _census(args: argparse.Namespace) -> int:
    from conformance import census

    names = list(dict.fromkeys(n.strip() for n in args.framework.split(",") if n.strip()))
    unknown = [n for n in names if n not in adapters.MODULES]
    if unknown or not names:
        return _usage(f"unknown framework: {', '.join(unknown) or '(none)'}")
    failing = False
    for name, found in census.census(names).items():
        if isinstance(found, str):
            print(f"{name}: {found}")
            continue
        n = census.counts(found)
        print(
            f"{name}: {n['covered']} covered, {n['out-of-scope']} out of scope, "
            f"{n['pending']} pending, {n['not-covered']} not covered"
        )
        for f in found:
            if f.status != "covered" or args.all:
                detail = f" ({f.detail})" if f.detail else ""
                print(f"  {f.status:<13} {f.name}{detail}")
        failing |= n["not-covered"] > 0
    return EXIT_FAILING if failing else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    """Regenerate every derived file of a run directory from its saved rows (report.write_all).

    Lines of results.jsonl that cannot be read are skipped and named, here and in the report;
    a damaged summary.json costs only the environment. Exit 2 when results.jsonl cannot be
    read at all, when none of its lines is a usable row, or when an output cannot be written.
    """
    from conformance import report

    run_dir: Path = args.run_dir
    source = run_dir / results.RESULTS_FILE
    try:
        loaded = results.load_rows(run_dir)
    except FileNotFoundError:
        return _usage(f"{run_dir} has no {results.RESULTS_FILE}")
    except OSError as exc:
        return _usage(f"{exc.filename or source}: {results.os_problem(exc)}")
    notes: list[str] = []
    failures: list[str] = []
    for name, outcome in report.write_all(run_dir, loaded, notes):
        if isinstance(outcome, OSError):  # a write error (disk full) names no file: name it
            failures.append(f"{outcome.filename or run_dir / name}: {results.os_problem(outcome)}")
        else:
            print(f"{name}: {outcome}")
    for note in notes:
        print(f"conformance: warning: {run_dir}: {note}", file=sys.stderr)
    if loaded.frame.empty and loaded.skipped:
        failures.append(f"{source}: no usable rows")
    for failure in failures:
        _usage(failure)
    return EXIT_USAGE if failures else EXIT_OK


def _migrate(args: argparse.Namespace) -> int:
    """Write migrate-A-to-B.md and .html (report/migrate.py); run A and B first without a
    run directory. Exit 0, or 2 for bad usage or a run directory that cannot be read."""
    from conformance.report import migrate

    source = migrate.canonical_framework(args.source)
    target = migrate.canonical_framework(args.target)
    for given, name in ((args.source, source), (args.target, target)):
        if name is None:
            allowed = ", ".join(dict.fromkeys([*migrate.ALIASES, *adapters.MODULES]))
            return _usage(f"unknown framework {given!r} (allowed: {allowed})")
    assert source is not None and target is not None
    if source == target:
        return _usage(f"--from and --to name the same framework ({source})")
    run_dir: Path | None = args.run_dir
    if run_dir is None:
        run_dir = runner.timestamp_dir(Path("reports") / f"migrate-{source}-{target}")
        code = main(["run", "--framework", f"{source},{target}", "--mode", "eager",
                     "--out", str(run_dir), "--no-progress", "--cases", *args.cases])  # fmt: skip
        if code not in (EXIT_OK, EXIT_FAILING):
            return code
    try:
        loaded = results.load_rows(run_dir)
    except FileNotFoundError:
        return _usage(f"{run_dir} has no {results.RESULTS_FILE}")
    except OSError as exc:
        return _usage(f"{exc.filename or run_dir}: {results.os_problem(exc)}")
    advice = migrate.migrate(loaded.frame, source, target, run_dir=str(run_dir))
    out: Path = args.out or run_dir
    stem = f"migrate-{source}-to-{target}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        md = out / f"{stem}.md"
        md.write_text(migrate.markdown(advice), encoding="utf-8")
        page = out / f"{stem}.html"
        page.write_text(migrate.html(advice), encoding="utf-8")
    except OSError as exc:
        return _usage(f"{exc.filename or out}: {results.os_problem(exc)}")
    for note in advice.notes:
        print(f"conformance: warning: {note}", file=sys.stderr)
    counts = advice.counts()
    print(
        f"{migrate.label(source)} -> {migrate.label(target)}: {len(advice.entries)} entries; "
        f"case groups with the best entry: {counts['agrees']} agree, {counts['differs']} "
        f"differ, {counts['cannot']} cannot, {counts['not run']} not run"
    )
    print(f"markdown: {md}\nhtml: {page}")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    """Compare two run directories (report/diff.py): exit 1 on a regression, 2 on bad input."""
    from conformance.report import diff

    if not (args.threshold > 1.0 and math.isfinite(args.threshold)):
        return _usage(f"--threshold must be a finite factor > 1, not {args.threshold}")
    try:
        return diff.run_diff(
            args.old, args.new, threshold=args.threshold, md=args.md, html_out=args.html
        )
    except diff.DiffInputError as exc:
        return _usage(str(exc))
    except OSError as exc:
        return _usage(f"{exc.filename or args.md or args.html}: {results.os_problem(exc)}")


def _fuzz(args: argparse.Namespace) -> int:
    """Search for unexplained failures (conformance/fuzz.py); 1 when one was saved."""
    try:
        from conformance import fuzz
    except ImportError as exc:  # hypothesis is a test dependency, not a core one
        return _usage(f"conformance fuzz needs hypothesis (pip install hypothesis): {exc}")
    frameworks = parse_frameworks(args.framework)
    if isinstance(frameworks, str):
        return _usage(frameworks)
    known = ledger_.load_paths(_files(args.cases))
    out = args.out or fuzz.default_out_dir(Path("reports"))
    problem = fuzz.prepare_out_dir(out)
    if problem:
        return _usage(problem)
    print(f"fuzzing {', '.join(frameworks)} for {args.budget:g} s (seed {args.seed}) into {out}")
    stop, received = threading.Event(), list[int]()
    with _stop_on_signals(stop, received):
        summary = fuzz.fuzz(
            frameworks,
            out,
            budget=args.budget,
            seed=args.seed,
            ledger=known,
            stop=stop,
            on_finding=lambda finding: print(finding.line(), flush=True),
        )
    findings = summary["findings"]
    print(
        f"{summary['examples']} examples in {summary['seconds']:g} s "
        f"({summary['shrink_examples']} of them shrinking), {summary['rounds']} round(s): "
        + (f"{len(findings)} finding(s) saved" if findings else "no unexplained failing row")
        + f"; summary: {out / fuzz.FUZZ_FILE}"
    )
    if summary["not_saved"]:
        print(
            f"{len(summary['not_saved'])} more signature(s) seen but not saved (at most "
            f"{fuzz.MAX_FINDINGS} files per run); fuzz.json lists them under not_saved"
        )
    if summary["stopped"] == "interrupted":
        print("interrupted: the findings so far are saved", file=sys.stderr)
        return EXIT_TERMINATED if signal.SIGTERM in received else EXIT_INTERRUPTED
    return EXIT_FAILING if findings else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "run": _run,
        "merge": _merge,
        "validate": _validate,
        "list": _list,
        "report": _report,
        "fuzz": _fuzz,
        "census": _census,
        "migrate": _migrate,
        "diff": _diff,
    }
    try:
        return handler[args.command](args)
    except cases.CaseErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print(f"{len(exc.errors)} problem(s) in case files", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before the run started, or while writing the report
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
