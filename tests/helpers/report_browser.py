"""Check HTML pages, notably Snakemake's single-page HTML report, with Playwright.

Playwright drives Debian's ``chromium`` package (``executable_path``); its own browser
download is never used. ``tests/conftest.py`` passes ``launch_options()`` to pytest-playwright,
so tests get a ready ``page`` fixture to hand to ``inspect_page`` or ``figures_shown``.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import ConsoleMessage, FrameLocator, Locator, Page, expect

CHROMIUM_PACKAGE = "chromium"
# Needed as root on an offline machine: no sandbox (root), no GPU, and no traffic of the
# browser's own (QUIC probes, first-run pages, component updates, sync).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ChromiumUnavailable(RuntimeError):
    """Chromium is not installed and cannot be installed here."""


def _find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def ensure_chromium() -> str:
    """The chromium binary, installing Debian's package first if it is missing (as root)."""
    path = _find_chromium()
    if path:
        return path
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ChromiumUnavailable("chromium is not installed and we cannot apt-get install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a concurrent apt/dpkg run instead of failing on its lock.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    install = [*apt, "install", "-y", "--no-install-recommends", CHROMIUM_PACKAGE]

    def run(command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    result = run(install)
    if result.returncode != 0 and "Unable to locate package" in result.stderr:
        # Fresh image without package lists.
        update = run([*apt, "update"])
        if update.returncode != 0:
            raise ChromiumUnavailable(f"apt-get update failed: {update.stderr[-800:]}")
        result = run(install)
    if result.returncode != 0:
        raise ChromiumUnavailable(f"apt-get install chromium failed: {result.stderr[-800:]}")
    path = _find_chromium()
    if not path:
        raise ChromiumUnavailable("apt-get installed chromium but no chromium binary is on PATH")
    return path


def chromium_or_skip() -> str:
    """``ensure_chromium()`` for tests: skip if unavailable, but fail when ``CI=true``."""
    import pytest

    try:
        return ensure_chromium()
    except ChromiumUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium unavailable in CI: {error}", pytrace=False)
        pytest.skip(f"chromium unavailable: {error}")


def launch_options(defaults: dict) -> dict:
    """pytest-playwright's launch options with our chromium and its flags."""
    return {**defaults, "executable_path": chromium_or_skip(), "args": CHROMIUM_ARGS}


# --------------------------------------------------------------------------- any page

# Upper bound for one wait on the page (a click's effect, an image's decode); never a pause.
TIMEOUT_MS = 60_000
# Resolves once the image is loaded and decoded (rejects if it cannot be): an event, no polling.
_DECODED_JS = """img => img.decode().then(() => true, () => false).then(decoded => ({
  src_prefix: (img.getAttribute("src") || "").slice(0, 40), decoded, complete: img.complete,
  natural_width: img.naturalWidth, natural_height: img.naturalHeight}))"""


def watch_console(page: Page) -> list[str]:
    """Start collecting console errors and uncaught exceptions of ``page`` (call before goto)."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            url = message.location.get("url", "")[:120]  # data: URLs can be megabytes long
            errors.append(f"[console] {message.text}" + (f" ({url})" if url else ""))

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"[exception] {error.message}"))
    return errors


def image_state(img: Locator) -> dict:
    """``src_prefix``, ``complete``, ``natural_width``/``natural_height`` once decoding ended."""
    state = img.evaluate(_DECODED_JS)
    state["loaded"] = state["complete"] and state["natural_width"] > 0
    return state


@dataclass
class PageCheck:
    title: str
    text: str  # visible text of the body
    images: list[dict]  # image_state() of every <img>, in document order
    console_errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.console_errors and all(image["loaded"] for image in self.images)


def inspect_page(page: Page, html_path: str | os.PathLike) -> PageCheck:
    """Open a local HTML file and report its console errors and whether its images decoded."""
    errors = watch_console(page)
    page.goto(Path(html_path).resolve().as_uri(), timeout=TIMEOUT_MS)
    images = [image_state(img) for img in page.locator("img").all()]
    return PageCheck(page.title(), page.locator("body").inner_text(), images, errors)


# --------------------------------------------------------------------------- Snakemake report

# Snakemake 9 report (snakemake/report/html_reporter/template): React renders, under #app, a
# <nav> (breadcrumbs, then a pane with the menu, a category's subcategories or a results table)
# and next to it the content pane (the selected image as <img>, HTML/PDF as <iframe>).
# Globals `results` ({path: {mime_type, data_uri, ...}}) and `categories`
# ({category: {subcategory: [path, ...]}}) hold the report's data.
_NAV = "#app > div > nav"
_CONTENT = "#app > div > nav + div"
_SELECTED_ROW = re.compile(r"\bbg-slate-700\b")  # the app highlights the shown result's row
_GENERAL_MENU = ("Workflow", "Statistics", "About")
_PLAN_JS = """() => ({categories, mime_types: Object.fromEntries(
  Object.entries(results).map(([path, result]) => [path, result.mime_type]))})"""
# The result a results-table row stands for, among `paths`, from what the row shows: the path
# (unlabelled results) or the label values under the column names, and the label toggles' values.
# Not from data: URIs, which equal results with equal contents share.
_ROW_PATH_JS = """(row, paths) => {
  const text = element => element.textContent.trim();
  const names = Array.from(row.closest("table").querySelectorAll("thead th")).slice(0, -1).map(text);
  const cells = Array.from(row.querySelectorAll(":scope > td")).slice(0, -1).map(text);
  const toggles = Array.from(row.closest("div.p-3").querySelectorAll("fieldset")).map(
    set => [text(set.querySelector("span")), set.querySelector("input:checked").value]);
  const labelled = paths.every(path => results[path].labels);
  const matches = paths.filter(path => {
    if (!labelled) return cells.length === 1 && cells[0] === path;
    const labels = results[path].labels;
    return names.every((name, i) => String(labels[name] || "") === cells[i])
      && toggles.every(([name, value]) => String(labels[name]) === value);
  });
  return matches.length === 1 ? matches[0] : null;
}"""
_DATA_OF_JS = (
    "(element, [attribute, path]) => element.getAttribute(attribute) === results[path].data_uri"
)
_IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif", "image/webp")
_TABLE_MIMES = ("text/csv", "text/tab-separated-values", "text/tsv")


def _kind(mime: str) -> str:
    if mime in _IMAGE_MIMES:
        return "image"
    if mime in _TABLE_MIMES:
        return "table"
    return {"text/html": "html", "application/pdf": "pdf"}.get(mime, "other")


def _decode_data_uri(uri: str) -> bytes:
    head, _, data = uri.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(data)
    return urllib.parse.unquote_to_bytes(data)


def _check_table(uri: str, mime: str) -> tuple[bool, str]:
    text = _decode_data_uri(uri).decode("utf-8", "replace")
    delimiter = "\t" if "tab" in mime or "tsv" in mime else ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    if len(rows) < 2:
        return False, f"table has {len(rows)} row(s) (need a header and data)"
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        return False, f"ragged table: row widths {sorted(widths)}"
    return True, f"{len(rows) - 1} data rows x {widths.pop()} columns"


def _check_html(frame: FrameLocator) -> tuple[bool, str]:
    body = frame.locator("body")
    try:
        expect(body).to_have_text(re.compile(r"\S"), timeout=TIMEOUT_MS)
    except AssertionError:
        return False, "the <iframe> document stayed empty"
    tables = frame.locator("table").count()
    return True, f"iframe document: {tables} <table>, text {body.inner_text()[:60]!r}"


@dataclass
class ReportCheck:
    title: str
    menu: list[str]  # entries of the main menu, as shown
    categories: list[str]  # the result categories among them
    results: dict[str, dict]  # path -> status (see figures_shown)
    console_errors: list[str]


class _Report:
    """The report app in ``page``, driven through its menu like a user would."""

    def __init__(self, page: Page, mime_types: dict[str, str]):
        self.page = page
        self.mime_types = mime_types
        self.nav = page.locator(_NAV)
        self.pane = self.nav.locator(":scope > div > div.p-3")  # under the breadcrumbs
        self.content = page.locator(_CONTENT)
        self.rows = self.pane.locator("table > tbody > tr")

    def link(self, label: str) -> Locator:
        return self.pane.get_by_role("link", name=label, exact=True)

    def home(self) -> list[str]:
        """Back to the main menu (the first breadcrumb); returns its entries."""
        self.nav.locator("nav ol > li a").first.click()
        expect(self.link("Workflow")).to_be_visible(timeout=TIMEOUT_MS)
        return [text.strip() for text in self.pane.locator("li > a").all_inner_texts()]

    def open_results(self, label: str, subcategory: str | None) -> None:
        self.home()
        self.link(label).click()
        if subcategory is not None:
            self.link(subcategory).click()
        self.rows.first.wait_for(timeout=TIMEOUT_MS)

    def toggle_choices(self) -> list[Locator | None]:
        """The label toggle's values (results hidden behind a toggle), or [None] without one."""
        choices = self.pane.locator("fieldset label").all()
        return choices or [None]

    def show_row(self, row: Locator, paths: list[str]) -> tuple[str | None, dict]:
        """The row's result (among ``paths``) and what its view button shows or downloads."""
        path = row.evaluate(_ROW_PATH_JS, paths)
        if path is None:
            return None, {}
        view = row.locator("td").last.locator("a").first
        if view.get_attribute("download") is not None:
            if not view.evaluate(_DATA_OF_JS, ["href", path]):
                return path, {"problem": "the download link holds another result's data"}
            return path, {"download": view.get_attribute("href")}
        view.click()
        try:
            expect(row.locator("td").first).to_have_class(_SELECTED_ROW, timeout=TIMEOUT_MS)
        except AssertionError:
            return path, {"problem": "clicking its view button did not select it"}
        shown = self.content.locator("img, iframe").first
        if shown.count() == 0 or not shown.evaluate(_DATA_OF_JS, ["src", path]):
            return path, {"problem": "the content pane does not show its data"}
        if shown.evaluate("element => element.tagName") == "IMG":
            return path, {"img": image_state(shown)}
        # Read now: the next click replaces the <iframe>.
        if _kind(self.mime_types[path]) == "html":
            return path, {"frame": _check_html(shown.content_frame)}
        return path, {"frame": (True, "<iframe>")}


def _status(category: str, subcategory: str, mime: str, seen: dict | None) -> dict:
    kind = _kind(mime)
    status = {"category": category, "subcategory": subcategory, "mime_type": mime, "kind": kind}
    if seen is None:
        return status | {"ok": False, "detail": "no row of the results table shows it"}
    if "problem" in seen:
        return status | {"ok": False, "detail": seen["problem"]}
    if "download" in seen:
        if kind == "table":
            ok, detail = _check_table(seen["download"], mime)
        else:
            ok, detail = seen["download"].startswith("data:"), "download link"
        return status | {"ok": ok, "detail": detail}
    if kind == "image":
        img = seen.get("img")
        if img is None:
            return status | {"ok": False, "detail": "not shown as an <img>"}
        size = f"{img['natural_width']}x{img['natural_height']}"
        return status | {
            "ok": img["loaded"],
            "detail": f"<img> {size} decoded={img['decoded']}",
            "natural_width": img["natural_width"],
            "natural_height": img["natural_height"],
        }
    if "frame" not in seen:
        return status | {"ok": False, "detail": "not shown in an <iframe>"}
    ok, detail = seen["frame"]
    return status | {"ok": ok, "detail": detail}


def figures_shown(
    page: Page, html_path: str | os.PathLike, category: str | None = None
) -> ReportCheck:
    """Open a Snakemake report and check every result of ``category`` (None: of all).

    For each category and subcategory: back to the main menu, click the category (labelled
    "Results" when the report has one category) and the subcategory if there are several,
    then the view button of every row of the results table (for each value of a label toggle,
    if the table has one), and check what the content pane shows. Each result's status has
    ``category``, ``subcategory``, ``mime_type``, ``kind`` (image, table, html, pdf, other),
    ``ok`` and ``detail``:

    * image: shown as an ``<img>`` that decoded with naturalWidth > 0 (``natural_width`` and
      ``natural_height`` given);
    * table (CSV/TSV): the app offers a download link, not a view; ok if its ``data:`` URI is a
      rectangular table with a header and at least one data row;
    * html: shown in an ``<iframe>`` whose document has visible text;
    * pdf/other: shown in an ``<iframe>`` or offered as a ``data:`` download link.

    A result that no row shows is not ok.
    """
    errors = watch_console(page)
    page.goto(Path(html_path).resolve().as_uri(), timeout=TIMEOUT_MS)
    plan = page.evaluate(_PLAN_JS)  # the report's data scripts ran before the load event
    categories, mime_types = plan["categories"], plan["mime_types"]
    report = _Report(page, mime_types)
    menu = report.home()
    if category is not None and category not in categories:
        raise ValueError(f"category {category!r} not in the report (has {sorted(categories)})")
    statuses: dict[str, dict] = {}
    for name in sorted(categories):
        if category is not None and name != category:
            continue
        label = "Results" if len(categories) == 1 else name
        subcategories = sorted(categories[name])
        for subcategory in subcategories:
            report.open_results(label, subcategory if len(subcategories) > 1 else None)
            seen: dict[str, dict] = {}
            for choice in report.toggle_choices():
                if choice is not None:
                    choice.click()
                for row in report.rows.all():
                    path, state = report.show_row(row, categories[name][subcategory])
                    if path is not None:
                        seen[path] = state
            for path in categories[name][subcategory]:
                statuses[path] = _status(name, subcategory, mime_types[path], seen.get(path))
    return ReportCheck(
        title=page.title(),
        menu=menu,
        categories=[entry for entry in menu if entry not in _GENERAL_MENU],
        results=statuses,
        console_errors=errors,
    )
