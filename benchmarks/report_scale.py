"""Benchmark: the report of a run at the suite's full size (100 000 rows by default).

    .venv/bin/python benchmarks/report_scale.py RUN_DIR [--rows 100000] [--keep DIR]

Replicates the rows of a real run directory (``RUN_DIR``, e.g. a default ``conformance run``;
only read) until ``--rows`` is reached, each copy's ``case_id`` and ``base_id`` given a suffix so
that its keys differ, into a fresh run directory with the same ``summary.json``. Then times,
with ``time.perf_counter``:

1. ``write_all`` (every derived file) from the run directory, as ``conformance report`` does,
   then each output alone from rows already read: ``load_rows``, the findings,
   ``report.render``, ``write_csv``, ``formats.write_parquet``, ``formats.junit`` and
   ``formats.markdown``; with the size of each file written.
2. When Chromium and chromedriver are installed (never downloaded): ``report.html`` opened
   from disk in headless Chromium: from ``driver.get()`` to the rows explorer showing its
   "N of M rows" count (and the page's own navigation timing), the page's JavaScript heap
   (``performance.memory.usedJSHeapSize``) once it is open, then a verdict filter change
   until the count has changed (also timed inside the page, JavaScript only), a sort by max
   ULP, the next page, typing a text filter and opening a row's detail.

Numbers go to stdout as Markdown tables; the README quotes a run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conformance.report import findings, formats, render, write_all, write_csv
from conformance.report._html import read_summary
from conformance.results import RESULTS_FILE, SUMMARY_FILE, ResultWriter, load_rows, summarize

MB = 1e6
Step = tuple[str, float | None, str]  # what, seconds (None: not a time), its result


def replicate(source: Path, target: Path, rows: int) -> int:
    """Write ``rows`` rows into ``target``: the rows of ``source`` over and over, copy k > 0
    with ``~k`` after its ``base_id`` (and inside its ``case_id``); return how many copies."""
    lines = (source / RESULTS_FILE).read_bytes().splitlines()
    real = [json.loads(line) for line in lines if line.strip()]
    if not real:
        raise SystemExit(f"{source / RESULTS_FILE} has no rows")
    target.mkdir(parents=True, exist_ok=True)
    copies = 0
    with ResultWriter(target) as writer:
        written = 0
        while written < rows:
            batch = real[: rows - written]
            if copies:
                batch = [_renamed(row, f"~{copies}") for row in batch]
            for start in range(0, len(batch), 2000):
                writer.write(batch[start : start + 2000])
            written += len(batch)
            copies += 1
    if (source / SUMMARY_FILE).is_file():
        shutil.copyfile(source / SUMMARY_FILE, target / SUMMARY_FILE)
    return copies


def _renamed(row: dict[str, Any], suffix: str) -> dict[str, Any]:
    out = dict(row)
    base = str(row.get("base_id") or "")
    case = str(row.get("case_id") or "")
    out["base_id"] = base + suffix
    # "ce-basic[dtype=float32]" -> "ce-basic~2[dtype=float32]": the id keeps its shape.
    out["case_id"] = case.replace(base, base + suffix, 1) if base in case else case + suffix
    return out


@contextmanager
def timed(into: list[Step], name: str, size: Callable[[], str] = str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into.append((name, time.perf_counter() - start, size()))


def _size(path: Path) -> Callable[[], str]:
    return lambda: f"{path.stat().st_size / MB:.1f} MB"


def bench_outputs(run_dir: Path) -> list[Step]:
    """write_all as a whole, then each of its steps alone."""
    out: list[Step] = []
    with timed(out, "write_all (reads results.jsonl, writes all six files)"):
        written = write_all(run_dir)
    failed = [f"{name}: {result}" for name, result in written if isinstance(result, OSError)]
    if failed:
        raise SystemExit("write_all could not write " + "; ".join(failed))
    with timed(out, "load_rows (read and check results.jsonl)", _size(run_dir / RESULTS_FILE)):
        loaded = load_rows(run_dir)
    frame = loaded.frame
    _, environment, _ = read_summary(run_dir)
    with timed(out, "findings"):
        found = findings(frame, environment)
    with timed(out, "report.render (report.html)", _size(run_dir / "report.html")):
        render(run_dir, loaded)
    with timed(out, "write_csv (results.csv)", _size(run_dir / "results.csv")):
        write_csv(run_dir, loaded)
    parquet = run_dir / formats.PARQUET_FILE
    with timed(out, "formats.write_parquet (results.parquet)", _size(parquet)):
        formats.write_parquet(frame, parquet)
    junit = run_dir / formats.JUNIT_FILE
    with timed(out, "formats.junit (junit.xml)", _size(junit)):
        junit.write_text(formats.junit(frame, run_dir.name), encoding="utf-8")
    markdown = run_dir / formats.MARKDOWN_FILE
    summary = summarize(frame, environment)
    with timed(out, "formats.markdown (summary.md)", _size(markdown)):
        markdown.write_text(formats.markdown(summary, found, str(run_dir)), encoding="utf-8")
    return out


def _browser() -> tuple[Any, str] | tuple[None, str]:
    """A headless Chromium driver, or None and why not."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        return None, "no chromium/chromedriver on PATH"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        return None, f"selenium is not installed ({exc})"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1800",
        "--enable-precise-memory-info",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    version = driver.capabilities.get("browserVersion", "?")
    return driver, f"Chromium {version}"


def _until(check: Callable[[], Any], limit: float = 300.0) -> float:
    """Poll ``check`` until it is truthy; seconds taken (raises after ``limit``)."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > limit:
            raise TimeoutError(f"not done after {limit} s")
        time.sleep(0.005)
    return time.perf_counter() - start


def bench_browser(report: Path, driver: Any) -> list[Step]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def count() -> str:
        return str(driver.find_element(By.ID, "f-count").text)

    out: list[Step] = []
    start = time.perf_counter()
    driver.get(report.as_uri())  # returns at the load event: the explorer's script has run
    loaded = time.perf_counter() - start
    _until(count)
    shown = time.perf_counter() - start
    navigation = driver.execute_script(
        "var n = performance.getEntriesByType('navigation')[0];"
        "return [n.domInteractive, n.loadEventEnd];"
    )
    out.append(
        ("in page: HTML parsed and explorer script run (domInteractive)", navigation[0] / 1000, "")
    )
    out.append(("in page: load event done (loadEventEnd)", navigation[1] / 1000, ""))
    out.append(("driver.get() returns", loaded, ""))
    out.append(("driver.get() to #f-count shown", shown, count()))
    started = time.perf_counter()
    driver.execute_script("return 1")
    out.append(
        ("a script round trip once open (the page is not busy)", time.perf_counter() - started, "")
    )
    heap = driver.execute_script(
        "return performance.memory ? performance.memory.usedJSHeapSize : null"
    )
    nodes = driver.execute_script("return document.getElementsByTagName('*').length")
    out.append(
        ("page JS heap (usedJSHeapSize)", None, "n/a" if heap is None else f"{heap / MB:.0f} MB")
    )
    out.append(("DOM elements", None, str(nodes)))

    def step(name: str, act: Callable[[], None]) -> None:
        """Time ``act`` until the count shows its result: the explorer's handlers run
        synchronously, so the count read after them is the new one."""
        before = count()
        started = time.perf_counter()
        act()
        if "→" in name:  # a filter: wait for its count to change
            _until(lambda: count() != before)
        result = count()
        out.append((name, time.perf_counter() - started, result))

    verdict = Select(driver.find_element(By.ID, "f-verdict"))
    step(
        "verdict filter → semantic-difference",
        lambda: verdict.select_by_value("semantic-difference"),
    )
    step("verdict filter → any", lambda: verdict.select_by_value(""))
    in_page = driver.execute_script(
        "var s = document.getElementById('f-verdict'), t = performance.now();"
        "s.value = 'pass'; s.dispatchEvent(new Event('change'));"
        "var ms = performance.now() - t;"
        "s.value = ''; s.dispatchEvent(new Event('change')); return ms;"
    )
    out.append(("in page: verdict filter → pass, JavaScript only", in_page / 1000, ""))
    header = driver.find_element(By.CSS_SELECTOR, '#rows-table th[data-sort="max_ulp"]')
    step("sort by max ULP (all rows)", header.click)
    step("next page", driver.find_element(By.ID, "p-next").click)
    search = driver.find_element(By.ID, "f-text")
    step("text filter: typing 'grad' (a filter per keystroke) →", lambda: search.send_keys("grad"))
    first = driver.find_element(By.CSS_SELECTOR, "#rows-table tbody tr[data-row]")
    step("open a row's detail", first.click)
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    out.append(("console SEVERE entries", None, str(len(severe))))
    return out


def _table(title: str, rows: list[Step]) -> None:
    print(f"\n{title}\n")
    print("| step | seconds | result |")
    print("|---|---|---|")
    for name, seconds, result in rows:
        print(f"| {name} | {'' if seconds is None else f'{seconds:.2f}'} | {result} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory to replicate")
    p.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic run")
    p.add_argument("--keep", type=Path, help="build the synthetic run here and keep it")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    args = p.parse_args()
    if not (args.run_dir / RESULTS_FILE).is_file():
        raise SystemExit(f"{args.run_dir} has no {RESULTS_FILE}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="report-scale-"))
    if args.keep and any(args.keep.iterdir() if args.keep.exists() else ()):
        raise SystemExit(f"{args.keep} is not empty")
    try:
        run_dir = work / "run"
        start = time.perf_counter()
        copies = replicate(args.run_dir, run_dir, args.rows)
        made = time.perf_counter() - start
        print(
            f"report at scale: {args.rows} rows ({copies} copies of the {args.run_dir} rows, "
            f"built in {made:.1f} s) on {os.cpu_count()} CPUs, {platform.machine()}, "
            f"Python {platform.python_version()}, {platform.platform(terse=True)}"
        )
        _table("Writing the outputs", bench_outputs(run_dir))
        if args.no_browser:
            return
        driver, what = _browser()
        if driver is None:
            print(f"\nbrowser: skipped ({what})")
            return
        try:
            _table(
                f"report.html in headless {what}", bench_browser(run_dir / "report.html", driver)
            )
        finally:
            driver.quit()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
