"""Command line: ``conformance run | validate | list | report``.

Exit status: 0 when every row is pass / unsupported / expected-error / skipped; 1 when any row
is mismatch / error / no-error / crashed / timeout; 2 for bad usage or invalid case files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import adapters, cases, results, runner

EXIT_OK, EXIT_FAILING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conformance",
        description="Cross-framework conformance of loss functions against a float64 oracle.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run cases on frameworks and write a report")
    r.add_argument(
        "--cases",
        nargs="+",
        default=["cases"],
        metavar="PATH",
        help="case files or directories (default: cases)",
    )
    r.add_argument(
        "--framework",
        default=",".join(runner.FRAMEWORKS),
        help="comma-separated subset of: " + ", ".join(adapters.MODULES),
    )
    r.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    r.add_argument(
        "-k",
        dest="keyword",
        default=None,
        help="only cases whose id contains this text (case-insensitive)",
    )
    r.add_argument(
        "--out", type=Path, default=None, help="run directory (default: reports/<UTC timestamp>)"
    )
    r.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds one call may take before its worker is killed (default 120)",
    )
    r.add_argument(
        "--max-elements",
        type=int,
        default=cases.DEFAULT_MAX_ELEMENTS,
        help="largest input a case may declare (default %(default)s)",
    )
    r.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 even when rows fail (the report still shows them)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    v = sub.add_parser("validate", help="check case files; exit 2 on any problem")
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument("--max-elements", type=int, default=cases.DEFAULT_MAX_ELEMENTS)

    ls = sub.add_parser("list", help="list expanded case ids (or adapter entries)")
    ls.add_argument("paths", nargs="*", default=["cases"], metavar="PATH")
    ls.add_argument(
        "--entries",
        action="store_true",
        help="list each framework's API entries and what they declare",
    )

    rep = sub.add_parser("report", help="re-render report.html from a run directory")
    rep.add_argument("run_dir", type=Path)
    return p


def _load(paths: Sequence[str], max_elements: int) -> list[cases.Case]:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SystemExit(_usage(f"no such file or directory: {', '.join(missing)}"))
    files = cases.find_case_files(paths)
    if not files:
        raise SystemExit(_usage(f"no .yaml case files under {', '.join(paths)}"))
    return cases.load_paths(files, max_elements=max_elements)


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


def _run(args: argparse.Namespace) -> int:
    frameworks = [f.strip() for f in args.framework.split(",") if f.strip()]
    unknown = [f for f in frameworks if f not in adapters.MODULES]
    if unknown or not frameworks:
        return _usage(
            f"unknown framework {', '.join(unknown) or '(none)'} "
            f"(allowed: {', '.join(adapters.MODULES)})"
        )
    selected = _load(args.cases, args.max_elements)
    if args.keyword:
        selected = [c for c in selected if args.keyword.lower() in c.id.lower()]
        if not selected:
            return _usage(f"-k {args.keyword!r} matches no case")
    run_dir = args.out or runner.timestamp_dir(Path("reports"))
    show = not args.no_progress and sys.stderr.isatty()
    environment = runner.run(
        selected,
        run_dir,
        frameworks=frameworks,
        device=args.device,
        timeout=args.timeout,
        progress=_progress if show else None,
    )
    frame = results.load(run_dir)
    summary = results.summarize(frame, environment)
    results.write_summary(run_dir, summary)
    from conformance import report

    report.write_csv(run_dir)
    html = report.render(run_dir)
    counts = ", ".join(f"{n} {v}" for v, n in summary["by_verdict"].items() if n)
    print(f"{len(selected)} cases, {summary['rows']} rows: {counts or 'nothing ran'}")
    print(f"report: {html}")
    if "interrupted" in environment:
        print(f"interrupted: {environment['interrupted']}; rows so far are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary["failing"] and not args.exit_zero:
        return EXIT_FAILING
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    loaded = _load(args.paths, args.max_elements)
    files = {c.file for c in loaded}
    print(f"{len(files)} file(s), {len(loaded)} case(s) after expansion: OK")
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
                )
        return EXIT_OK
    for case in _load(args.paths, cases.DEFAULT_MAX_ELEMENTS):
        print(f"{case.id}\t{case.file}:{case.line}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    """Rewrite report.html and results.csv from a run directory's saved files.

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
    try:
        print(f"report: {report.render(run_dir, loaded, notes)}")
    except OSError as exc:  # a write error (disk full) names no file: name it here
        failures.append(
            f"{exc.filename or run_dir / report.REPORT_FILE}: {results.os_problem(exc)}"
        )
    try:
        print(f"csv: {report.write_csv(run_dir, loaded)}")
    except OSError as exc:
        failures.append(f"{exc.filename or run_dir / report.CSV_FILE}: {results.os_problem(exc)}")
    for note in notes:
        print(f"conformance: warning: {run_dir}: {note}", file=sys.stderr)
    if loaded.frame.empty and loaded.skipped:
        failures.append(f"{source}: no usable rows")
    for failure in failures:
        _usage(failure)
    return EXIT_USAGE if failures else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"run": _run, "validate": _validate, "list": _list, "report": _report}
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
