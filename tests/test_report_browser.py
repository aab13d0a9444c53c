"""report.html in a real browser (headless Chromium): what a reader sees and can do.

The other report tests read the HTML as text; these open it from disk as a reader would and
drive the rows explorer's JavaScript: the ranked finding cards, the filters, "Show its rows",
the detail of a row with its error plot, sorting, paging, and that hostile text from a case
stays text. Skipped where selenium, Chromium or chromedriver is missing (nothing is ever
downloaded). With ``CONFORMANCE_SCREENSHOT=DIR`` the screenshot test saves the README's
``report-findings.png`` and ``report-rows.png`` there.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance.report import write_all
from conformance.results import COLUMNS, ResultWriter, Verdict, summarize, write_summary

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
# Imported after the skip: they need selenium too.
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver import Chrome as WebDriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "needs a local Chromium and chromedriver on PATH (apt install chromium "
        "chromium-driver); nothing is downloaded",
        allow_module_level=True,
    )

HOSTILE = "<img src=x onerror=alert(1)>"
LEDGER = "cases/known.yaml:12 https://github.com/x/y/issues/1"
OPTION = "index_mean=count (a mean over the targets divides by their count, not by the weights)"
HIST = [0, 0, 0, 5, 3, 0, 0, 0, 0, 1]
ENVIRONMENT = {
    "python": "3.11.9",
    "numpy": "2.4.6",
    "platform": "Linux-x86_64",
    "torch": {"torch": "2.13.0", "device": "cpu"},
    "jax": {"jax": "0.10.2", "optax": "0.2.9", "device": "cpu"},
    "paddle": {"paddle": "3.3.1", "device": "cpu"},
    "tensorflow": {"tensorflow": "2.21.0", "keras": "3.15.1", "device": "cpu"},
}


def _row(
    case: str, api: str, verdict: Verdict, dtype: str = "float32", **extra: Any
) -> dict[str, Any]:
    framework = "jax" if api.startswith("optax") else api.split(".")[0]
    row: dict[str, Any] = {
        "case_id": f"{case}[dtype={dtype}]",
        "base_id": case,
        "file": "cases/cross_entropy.yaml",
        "line": 12,
        "loss": "nll" if case.startswith("nll") else "cross_entropy",
        "framework": framework,
        "api": api,
        "device": "cpu",
        "device_name": "cpu",
        "dtype": dtype,
        "mode": "eager",
        "output": "loss",
        "verdict": verdict.value,
        "reason": "within tolerance" if verdict is Verdict.PASS else f"{verdict.value} reason",
        "call": f"{api}(input, target, reduction='mean')",
        "params": {"reduction": "mean"},
        "target_kind": "index",
        "input_shape": [4, 3],
        "repro": f"import {framework}\n{api}(x, t)",
        "seconds": 0.01,
    }
    row.update(extra)
    return row


TORCH_CE = "torch.nn.functional.cross_entropy"
TORCH_NLL = "torch.nn.functional.nll_loss"
OPTAX_CE = "optax.softmax_cross_entropy_with_integer_labels"
PADDLE_CE = "paddle.nn.functional.cross_entropy"
KNOWN_REASON = (
    "known (https://github.com/x/y/issues/1): the reason; measured mismatch: 4 element(s) "
    "beyond tolerance"
)

# Twelve rows, three frameworks; findings: crashed, error, mismatch, known, semantic-difference.
ROWS: list[dict[str, Any]] = [
    _row("ce-basic", TORCH_CE, Verdict.PASS, max_ulp=0.5, max_rel_err=3e-8),
    _row("ce-basic", TORCH_CE, Verdict.PASS, "float64", max_ulp=1.0, max_rel_err=2e-16),
    _row(
        "ce-label-smoothing",
        TORCH_CE,
        Verdict.MISMATCH,
        reason="9 element(s) beyond tolerance; worst at [2]: expected 1.25, got 1.2539",
        max_ulp=32000.0,
        max_rel_err=3.1e-3,
        max_abs_err=3.9e-3,
        tolerance=2.4e-7,
        error_hist=HIST,
    ),
    _row(
        "ce-label-smoothing",
        TORCH_CE,
        Verdict.MISMATCH,
        output="grad",
        reason="2 element(s) beyond tolerance",
        max_ulp=812.0,
        max_rel_err=9.7e-5,
        tolerance=2.4e-7,
    ),
    _row(
        "ce-weighted",
        OPTAX_CE,
        Verdict.SEMANTIC_DIFFERENCE,
        explanation=OPTION,
        reason=f"documented difference: {OPTION}; against canonical: 3 element(s) beyond",
        max_ulp=4100.0,
    ),
    _row(
        "ce-weighted",
        OPTAX_CE,
        Verdict.SEMANTIC_DIFFERENCE,
        "float64",
        explanation=OPTION,
        reason=f"documented difference: {OPTION}; against canonical: 3 element(s) beyond",
        max_ulp=9.1e12,
    ),
    _row("ce-ignore", PADDLE_CE, Verdict.KNOWN, ledger=LEDGER, reason=KNOWN_REASON, max_ulp=64.0),
    _row(
        "ce-ignore",
        PADDLE_CE,
        Verdict.KNOWN,
        output="grad",
        ledger=LEDGER,
        reason=KNOWN_REASON,
        max_ulp=80.0,
    ),
    _row(
        "ce-label-smoothing",
        PADDLE_CE,
        Verdict.UNSUPPORTED,
        reason="no native parameter for label_smoothing",
        call=None,
    ),
    _row("ce-basic", OPTAX_CE, Verdict.PASS, max_ulp=0.0),
    _row(
        "nll-weight",
        TORCH_NLL,
        Verdict.ERROR,
        reason=f"ValueError: bad {HOSTILE} value",
        call=f"{TORCH_NLL}(input, target, weight='{HOSTILE}')",
    ),
    _row(
        "nll-basic",
        TORCH_NLL,
        Verdict.CRASHED,
        reason="worker died with SIGSEGV",
        stderr_tail="Fatal Python error: Segmentation fault",
    ),
]


def _write_run(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """A run directory of ``rows`` with a summary (its environment) and every output."""
    run_dir.mkdir(parents=True)
    with ResultWriter(run_dir) as writer:
        writer.write(rows)
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    write_summary(run_dir, summarize(frame, ENVIRONMENT))
    for name, written in write_all(run_dir):
        assert isinstance(written, Path), (name, written)
    return run_dir / "report.html"


def _suite_rows() -> list[dict[str, Any]]:
    """A realistic run of more than two pages: 4 frameworks × 9 cases × 3 dtypes × 2
    outputs, mostly passing, with a documented difference, a ledger entry, a dtype paddle
    has no kernel for, an unsupported option and one mismatch with its error plot."""
    apis = {
        "torch": TORCH_CE,
        "jax": OPTAX_CE,
        "paddle": PADDLE_CE,
        "tensorflow": "tensorflow.keras.losses.sparse_categorical_crossentropy",
    }
    cases = (
        "ce-basic", "ce-weighted", "ce-ignore-index", "ce-label-smoothing", "ce-3d",
        "ce-reduction-sum", "ce-reduction-none", "ce-large-logits", "ce-single-class",
    )  # fmt: skip
    rows = []
    for n, (case, dtype, output, framework) in enumerate(
        (c, d, o, f)
        for c in cases
        for d in ("float16", "float32", "float64")
        for o in ("loss", "grad")
        for f in apis
    ):
        api = apis[framework]
        extra: dict[str, Any] = {
            "output": output,
            "max_ulp": float(n % 7) / 2,
            "max_rel_err": (n % 7) * 1e-8,
            "tolerance": 2.4e-7,
            "seconds": 0.002 + (n % 11) / 1000,
        }
        verdict = Verdict.PASS
        if framework == "tensorflow" and case == "ce-ignore-index":
            verdict = Verdict.UNSUPPORTED
            extra = {"output": output, "reason": "no native parameter for ignore_index"}
        elif framework == "jax" and case == "ce-weighted":
            verdict = Verdict.SEMANTIC_DIFFERENCE
            extra |= {"explanation": OPTION, "max_ulp": 4100.0 + n, "error_hist": HIST}
            extra["reason"] = f"documented difference: {OPTION}; against canonical: 3 element(s)"
        elif framework == "paddle" and dtype == "float16":
            verdict = Verdict.NOT_IMPLEMENTED
            extra = {"output": output, "reason": "RuntimeError: no float16 kernel on CPU"}
        elif framework == "paddle" and case == "ce-large-logits":
            verdict = Verdict.KNOWN
            extra |= {"ledger": LEDGER, "reason": KNOWN_REASON, "max_ulp": 300.0 + n}
        elif framework == "torch" and case == "ce-label-smoothing" and dtype == "float16":
            verdict = Verdict.MISMATCH
            extra |= {"max_ulp": 32000.0, "max_rel_err": 3.1e-2, "max_abs_err": 3.9e-2}
            extra["error_hist"] = HIST
            extra["reason"] = "9 element(s) beyond tolerance; worst at [2]: expected 1.25"
        rows.append(_row(case, api, verdict, dtype, **extra))
    return rows


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_run(tmp_path_factory.mktemp("small") / "run", ROWS)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    rows = _suite_rows()
    return _write_run(tmp_path_factory.mktemp("reports") / "20250101-120000", rows), rows


def _open(driver: WebDriver, report: Path) -> None:
    """Load ``report`` afresh and wait for the explorer's first count."""
    with contextlib.suppress(NoAlertPresentException):
        driver.switch_to.alert.dismiss()  # one test's failure is not the next one's
    _browser_log(driver)  # drop what earlier pages logged
    driver.get(report.as_uri())
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "f-count").text)


def _browser_log(driver: WebDriver) -> list[dict[str, Any]]:
    """The console entries logged since the last call (reading them clears them)."""
    return list(driver.get_log("browser"))  # type: ignore[no-untyped-call]


def _console_clean(driver: WebDriver) -> None:
    severe = [e for e in _browser_log(driver) if e["level"] == "SEVERE"]
    assert not severe, severe


def _count(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "f-count").text)


def _rows(driver: WebDriver) -> list[WebElement]:
    """The explorer's visible table rows (not the detail rows)."""
    found = driver.find_elements(By.CSS_SELECTOR, "#rows-table tbody tr[data-row]")
    return [tr for tr in found if tr.is_displayed()]


def _cells(driver: WebDriver, column: int) -> list[str]:
    """Text of one column of the shown page, in one round trip."""
    script = (
        "var k = arguments[0];"
        "return Array.from(document.querySelectorAll('#rows-table tbody tr[data-row]'))"
        ".map(function (tr) { return tr.cells[k].textContent; });"
    )
    return list(driver.execute_script(script, column))


def _filter(driver: WebDriver, column: str, value: str) -> None:
    Select(driver.find_element(By.ID, f"f-{column}")).select_by_value(value)


def _no_alert(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018  (reading it is what raises)


def test_findings_ranked_most_severe_first(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    cards = driver.find_elements(By.CSS_SELECTOR, "#findings details.finding")
    assert [c.get_attribute("data-verdict") for c in cards] == [
        "crashed",
        "error",
        "mismatch",
        "known",
        "semantic-difference",
    ]
    first = cards[0]
    assert first.is_displayed() and first.get_attribute("data-framework") == "torch"
    summary = first.find_element(By.TAG_NAME, "summary")
    assert summary.text.startswith("crashed torch · nll —")
    # Closed: the card's statement and its button are not shown until it is opened.
    button = first.find_element(By.CSS_SELECTOR, "button.show-rows")
    statement = first.find_element(By.CSS_SELECTOR, "dl.fields dd")
    assert not statement.is_displayed() and not button.is_displayed()
    summary.click()
    assert first.get_attribute("open") is not None
    assert statement.is_displayed()
    assert statement.text.startswith(f"{first.get_attribute('id')}: {TORCH_NLL}: crashed")
    assert button.is_displayed() and button.text == "Show its rows"  # unhidden by the script
    _console_clean(driver)


def test_verdict_filter(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    assert _count(driver) == "12 of 12 rows"
    assert len(_rows(driver)) == 12
    for value, verdicts in (
        ("mismatch", {"mismatch"}),
        ("@failing", {"mismatch", "error", "crashed"}),
        ("@differing", {"mismatch", "error", "crashed", "known", "semantic-difference"}),
        ("unsupported", {"unsupported"}),
    ):
        _filter(driver, "verdict", value)
        expected = sum(r["verdict"] in verdicts for r in ROWS)
        assert _count(driver) == f"{expected} of 12 rows", value
        shown = _rows(driver)
        assert len(shown) == expected
        assert {tr.get_attribute("data-verdict") for tr in shown} <= verdicts
    # Filters combine: failing rows of the nll loss only.
    _filter(driver, "verdict", "@failing")
    _filter(driver, "loss", "nll")
    assert _count(driver) == "2 of 12 rows"
    driver.find_element(By.ID, "f-clear").click()
    assert _count(driver) == "12 of 12 rows"
    assert Select(driver.find_element(By.ID, "f-verdict")).first_selected_option.text == "any"
    _console_clean(driver)


def test_show_rows_of_a_finding(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    card = driver.find_element(
        By.CSS_SELECTOR, 'details.finding[data-verdict="semantic-difference"]'
    )
    card.find_element(By.TAG_NAME, "summary").click()
    text = card.text
    assert f"{OPTAX_CE} computes a documented variant, index_mean=count:" in text
    assert "not by the weights" in text  # the option's description, in full when open
    _filter(driver, "verdict", "pass")  # "Show its rows" clears any other filter
    card.find_element(By.CSS_SELECTOR, "button.show-rows").click()
    finding = card.get_attribute("id")
    assert driver.find_element(By.ID, "f-finding").get_attribute("value") == finding
    assert driver.find_element(By.ID, "f-verdict").get_attribute("value") == ""
    assert _count(driver) == "2 of 12 rows"
    expected = [r["case_id"] for r in ROWS if r.get("explanation") == OPTION]
    assert [tr.find_element(By.TAG_NAME, "td").text for tr in _rows(driver)] == expected
    assert driver.find_element(By.ID, "rows-table").is_displayed()
    # The known finding: both of its rows (loss and grad), its ledger link on the card.
    known = driver.find_element(By.CSS_SELECTOR, 'details.finding[data-verdict="known"]')
    known.find_element(By.TAG_NAME, "summary").click()
    link = known.find_element(By.CSS_SELECTOR, "a[href]")
    assert link.text == "https://github.com/x/y/issues/1" and link.is_displayed()
    assert "the reason (ledger)" in known.text
    known.find_element(By.CSS_SELECTOR, "button.show-rows").click()
    assert _count(driver) == "2 of 12 rows"
    assert {tr.get_attribute("data-verdict") for tr in _rows(driver)} == {"known"}
    _console_clean(driver)


def test_row_detail_and_error_plot(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    _filter(driver, "verdict", "mismatch")
    loss_row = next(tr for tr in _rows(driver) if tr.get_attribute("data-row") == "2")
    loss_row.click()
    detail = driver.find_element(By.CSS_SELECTOR, "#rows-table tbody tr.detail")
    assert detail.is_displayed()
    fields = detail.find_element(By.CSS_SELECTOR, "dl.fields")
    text = fields.text
    assert ROWS[2]["call"] in text and "ce-label-smoothing[dtype=float32]" in text
    assert "max rel 0.0031, max ULP 32000, tolerance" in text
    assert "repro" in text and "import torch" in text
    plot = fields.find_element(By.CSS_SELECTOR, "svg.hist")
    assert plot.is_displayed() and plot.size["width"] > 200
    bars = plot.find_elements(By.TAG_NAME, "rect")
    assert len(bars) == len(HIST)
    heights = [float(b.get_attribute("height") or "nan") for b in bars]
    assert [h > 0 for h in heights] == [n > 0 for n in HIST]
    assert heights[3] > heights[4] > heights[9] > 0  # 5, 3, 1 elements: taller is more
    # The counts label the bars; the red line marks the tolerance.
    labels = [t.text for t in plot.find_elements(By.TAG_NAME, "text")]
    assert {"5", "3", "1"} <= set(labels)
    assert plot.find_elements(By.TAG_NAME, "line")
    # Every label lies inside the plot, and the bin labels do not overlap.
    boxes = driver.execute_script(
        "var s = arguments[0], w = s.width.baseVal.value;"
        "return Array.from(s.querySelectorAll('text')).map(function (t) {"
        "  var b = t.getBBox(); return [b.x, b.x + b.width, b.y, w, t.textContent]; });",
        plot,
    )
    assert all(left >= 0 and right <= width for left, right, _, width, _ in boxes), boxes
    bins = sorted((b for b in boxes if b[4].startswith(("\u2264", ">"))), key=lambda b: b[0])
    assert len(bins) == len(HIST)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(bins)), bins
    # The grad row has no histogram: no plot; opening it closes the first detail.
    grad_row = next(tr for tr in _rows(driver) if tr.get_attribute("data-row") == "3")
    grad_row.click()
    details = driver.find_elements(By.CSS_SELECTOR, "#rows-table tbody tr.detail")
    assert len(details) == 1 and "2 element(s) beyond tolerance" in details[0].text
    assert not details[0].find_elements(By.CSS_SELECTOR, "svg")
    # Clicking the open row again closes it.
    next(tr for tr in _rows(driver) if tr.get_attribute("data-row") == "3").click()
    assert not driver.find_elements(By.CSS_SELECTOR, "#rows-table tbody tr.detail")
    _console_clean(driver)


def test_sort_by_max_ulp(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    header = driver.find_element(By.CSS_SELECTOR, '#rows-table th[data-sort="max_ulp"]')
    header.click()

    def shown() -> list[float]:
        return [-math.inf if c == "—" else float(c) for c in _cells(driver, 8)]

    largest = max(r["max_ulp"] for r in ROWS if "max_ulp" in r)
    values = shown()
    assert values[0] == pytest.approx(largest, rel=1e-3)  # 9.1e12 shown as "9.100e+12"
    assert values == sorted(values, reverse=True)
    assert _rows(driver)[0].find_element(By.TAG_NAME, "td").text == "ce-weighted[dtype=float64]"
    header.click()  # again: ascending, rows without a number first
    values = shown()
    assert values == sorted(values) and values[0] == -math.inf
    _console_clean(driver)


def test_hostile_text_stays_text(driver: WebDriver, small: Path) -> None:
    _open(driver, small)
    # In the server-rendered finding card (its numbers masked in the key) ...
    card = driver.find_element(By.CSS_SELECTOR, 'details.finding[data-verdict="error"]')
    assert "ValueError: bad <img src=x onerror=alert(N)> value" in card.text
    card.find_element(By.TAG_NAME, "summary").click()
    assert f"weight='{HOSTILE}'" in card.find_element(By.CSS_SELECTOR, "pre.call").text
    # ... in the explorer's table, found by the text filter, and in the row's detail.
    search = driver.find_element(By.ID, "f-text")
    search.send_keys("onerror")
    assert _count(driver) == "1 of 12 rows"
    (row,) = _rows(driver)
    assert row.find_element(By.CSS_SELECTOR, "td.reason").text == f"ValueError: bad {HOSTILE} value"
    row.click()
    detail = driver.find_element(By.CSS_SELECTOR, "#rows-table tbody tr.detail")
    assert f"weight='{HOSTILE}'" in detail.find_element(By.TAG_NAME, "pre").text
    assert f"ValueError: bad {HOSTILE} value" in detail.text
    # Never an element: no <img> anywhere, so no onerror ran and no alert is open.
    assert driver.execute_script("return document.getElementsByTagName('img').length") == 0
    _no_alert(driver)
    _console_clean(driver)


def test_paging(driver: WebDriver, suite: tuple[Path, list[dict[str, Any]]]) -> None:
    report, rows = suite
    total = len(rows)
    assert 200 < total <= 300  # three pages
    _open(driver, report)
    info = driver.find_element(By.ID, "p-info")
    prev, nxt = driver.find_element(By.ID, "p-prev"), driver.find_element(By.ID, "p-next")
    assert _count(driver) == f"{total} of {total} rows"
    assert info.text == f"rows 1–100 of {total}" and info.is_displayed()
    assert not prev.is_enabled() and nxt.is_enabled()
    first = _cells(driver, 0)
    assert len(first) == 100 and first == [r["case_id"] for r in rows[:100]]
    nxt.click()
    assert info.text == f"rows 101–200 of {total}"
    assert _cells(driver, 0) == [r["case_id"] for r in rows[100:200]]
    assert prev.is_enabled()
    nxt.click()
    assert info.text == f"rows 201–{total} of {total}"
    assert len(_rows(driver)) == total - 200 and not nxt.is_enabled()
    prev.click()
    assert info.text == f"rows 101–200 of {total}"
    # A filter starts again at the first page.
    _filter(driver, "framework", "paddle")
    paddle = sum(r["framework"] == "paddle" for r in rows)
    assert info.text == f"rows 1–{paddle} of {paddle}" and not nxt.is_enabled()
    assert _count(driver) == f"{paddle} of {total} rows"
    _console_clean(driver)


def test_suite_report_screenshots(
    driver: WebDriver, suite: tuple[Path, list[dict[str, Any]]]
) -> None:
    """The README's two pictures: the top of the report (a finding open) and the rows
    explorer with the mismatch's detail and error plot. Saved when CONFORMANCE_SCREENSHOT
    names a directory; checked either way."""
    report, rows = suite
    out = os.environ.get("CONFORMANCE_SCREENSHOT")
    driver.set_window_size(1400, 1000)
    try:
        _open(driver, report)
        cards = driver.find_elements(By.CSS_SELECTOR, "#findings details.finding")
        assert [c.get_attribute("data-verdict") for c in cards] == [
            "mismatch",
            "known",
            "semantic-difference",
        ]
        cards[0].find_element(By.TAG_NAME, "summary").click()
        assert cards[0].find_element(By.CSS_SELECTOR, "pre.repro").is_displayed()
        driver.execute_script("window.scrollTo(0, 0)")
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(Path(out) / "report-findings.png"))
        # The torch rows, largest error first: the mismatch on top, opened.
        _filter(driver, "framework", "torch")
        torch = sum(r["framework"] == "torch" for r in rows)
        assert _count(driver) == f"{torch} of {len(rows)} rows"
        driver.find_element(By.CSS_SELECTOR, '#rows-table th[data-sort="max_ulp"]').click()
        top = _rows(driver)[0]
        assert top.get_attribute("data-verdict") == "mismatch"
        top.click()
        plot = driver.find_element(By.CSS_SELECTOR, "#rows-table tr.detail svg.hist")
        assert plot.is_displayed()
        # Clicking scrolled the table's box sideways; a reader starts at its left edge.
        driver.execute_script(
            "document.querySelector('#rows .scroll').scrollLeft = 0;"
            "document.getElementById('rows').scrollIntoView();"
            "window.scrollBy(0, -8);"
        )
        assert driver.find_element(By.ID, "filters").is_displayed()
        if out:
            assert driver.save_screenshot(str(Path(out) / "report-rows.png"))
        _console_clean(driver)
    finally:
        driver.set_window_size(1400, 1800)
