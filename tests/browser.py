"""Check HTML pages (notably Snakemake's self-contained report) in headless Chromium.

Uses Debian's ``chromium`` package and the Chrome DevTools Protocol (CDP) over a websocket
(``websocket-client``); no Selenium/Playwright and no browser download.

Public API
----------
``ensure_chromium() -> str``
    Path of the chromium binary; installs Debian's package when root with apt-get, else
    raises ``ChromiumUnavailable``.
``chromium_or_skip() -> str``
    Same, for tests: ``pytest.skip`` when unavailable, ``pytest.fail`` when ``CI=true``.
``inspect_page(html_path, actions=None, timeout=60, ready_expression=None) -> PageReport``
    Load a file in a fresh headless browser, wait until it is idle, run ``actions(page)``,
    and report console errors, visible text and ``<img>`` states.
``figures_shown(html_path, category=None, timeout=60) -> dict``
    Navigate a Snakemake (9.x) report like a user: open each result category from the menu,
    click every result's view button and check what is displayed (see its docstring).

Console errors that are ignored (the test machine is offline, and these say nothing about
the page under test):

* ``Log.entryAdded`` entries with ``source == "network"`` whose URL is external
  (``http``/``https``/``ws``/``wss``) and whose text names an offline-type network error
  (``net::ERR_NAME_NOT_RESOLVED``, ``ERR_INTERNET_DISCONNECTED``, ``ERR_CONNECTION_REFUSED``,
  ``ERR_ADDRESS_UNREACHABLE``, ``ERR_CONNECTION_TIMED_OUT``, ``ERR_TIMED_OUT``,
  ``ERR_NETWORK_CHANGED``, ``ERR_PROXY_CONNECTION_FAILED``, ``ERR_NETWORK_ACCESS_DENIED``):
  a blocked external resource, not a bug in a *self-contained* report.  Failures of
  ``file:``/``data:`` resources are NOT ignored.
* Any error whose URL (or, lacking one, text) refers to ``/favicon.ico``: browsers request
  it on their own.

Everything ignored is kept in ``PageReport.ignored_errors`` so it can be inspected.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ChromiumUnavailable",
    "ConsoleMessage",
    "ImageInfo",
    "Page",
    "PageError",
    "PageReport",
    "chromium_or_skip",
    "ensure_chromium",
    "figures_shown",
    "inspect_page",
]

APT_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-port=0",
    # Quieter and deterministic: no first-run UI, no background/component-update traffic
    # (offline machine), fixed viewport.
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]
OFFLINE_NET_ERRORS = (
    "ERR_NAME_NOT_RESOLVED",
    "ERR_INTERNET_DISCONNECTED",
    "ERR_CONNECTION_REFUSED",
    "ERR_ADDRESS_UNREACHABLE",
    "ERR_CONNECTION_TIMED_OUT",
    "ERR_TIMED_OUT",
    "ERR_NETWORK_CHANGED",
    "ERR_PROXY_CONNECTION_FAILED",
    "ERR_NETWORK_ACCESS_DENIED",
)
EXTERNAL_SCHEMES = ("http://", "https://", "ws://", "wss://")


class ChromiumUnavailable(RuntimeError):
    """Chromium is not installed and cannot be installed here; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PageError(RuntimeError):
    """The browser or the page did not behave (start failure, timeout, JS evaluation error)."""


# --------------------------------------------------------------------------- install


_chromium_path: str | None = None


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """Return the chromium binary path, installing Debian's ``chromium`` package if needed.

    Installs only when running as root and ``apt-get`` exists; runs ``apt-get update`` only
    if the first install fails for lack of package lists.  Raises ``ChromiumUnavailable``.
    """
    global _chromium_path
    if _chromium_path and os.path.exists(_chromium_path):
        return _chromium_path
    path = _find_chromium()
    if path:
        _chromium_path = path
        return path
    if os.name != "posix" or os.geteuid() != 0:
        raise ChromiumUnavailable("chromium is not installed and we are not root to install it")
    if not shutil.which("apt-get"):
        raise ChromiumUnavailable("chromium is not installed and apt-get is not available")

    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a concurrent apt/dpkg run instead of failing on its lock.
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", *APT_INSTALL[1:]]

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=1200, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ChromiumUnavailable(f"{' '.join(cmd)} failed: {exc}") from exc

    res = run(install)
    if res.returncode != 0:
        out = res.stdout + res.stderr
        lacks_lists = any(
            s in out for s in ("Unable to locate package", "has no installation candidate", "404")
        )
        if not lacks_lists:
            raise ChromiumUnavailable(f"apt-get install chromium failed: {out.strip()[-800:]}")
        upd = run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"])
        if upd.returncode != 0:
            msg = (upd.stdout + upd.stderr).strip()[-800:]
            raise ChromiumUnavailable(f"apt-get update failed: {msg}")
        res = run(install)
        if res.returncode != 0:
            msg = (res.stdout + res.stderr).strip()[-800:]
            raise ChromiumUnavailable(f"apt-get install chromium failed after update: {msg}")
    path = _find_chromium()
    if not path:
        raise ChromiumUnavailable("apt-get installed chromium but no chromium binary is on PATH")
    _chromium_path = path
    return path


def chromium_or_skip() -> str:
    """``ensure_chromium()`` for tests: skip if unavailable, but fail when ``CI=true``."""
    import pytest

    try:
        return ensure_chromium()
    except ChromiumUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium unavailable in CI: {exc.reason}", pytrace=False)
        pytest.skip(f"chromium unavailable: {exc.reason}")


# --------------------------------------------------------------------------- reports


@dataclass
class ConsoleMessage:
    source: str  # "console" (Runtime.consoleAPICalled), "exception", or "log:<Log source>"
    text: str
    url: str = ""

    def __str__(self) -> str:
        return f"[{self.source}] {self.text}" + (f" ({self.url[:120]})" if self.url else "")


@dataclass
class ImageInfo:
    src_kind: str  # "data" for data: URIs, else "other"
    src_prefix: str  # first 40 characters of src
    complete: bool
    natural_width: int
    natural_height: int

    @property
    def loaded(self) -> bool:
        return self.complete and self.natural_width > 0


@dataclass
class PageReport:
    url: str
    title: str
    ready_state: str
    text: str  # document.body.innerText after the actions ran
    images: list[ImageInfo]  # every <img> in the document after the actions ran
    console_errors: list[ConsoleMessage]
    ignored_errors: list[ConsoleMessage] = field(default_factory=list)
    action_result: Any = None
    elapsed: float = 0.0  # seconds, browser start to report

    @property
    def ok(self) -> bool:
        return not self.console_errors and all(i.loaded for i in self.images)


# --------------------------------------------------------------------------- CDP


class _CDP:
    """Minimal synchronous CDP client on the browser websocket (flattened sessions)."""

    def __init__(self, ws_url: str, on_event: Callable[[dict], None], timeout: float):
        import websocket  # websocket-client

        self._websocket = websocket
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.on_event = on_event
        self.events: list[dict] = []
        self._id = 0

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    def _recv(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PageError("timed out waiting for the browser")
        self.ws.settimeout(remaining)
        try:
            raw = self.ws.recv()
        except self._websocket.WebSocketTimeoutException as exc:
            raise PageError("timed out waiting for the browser") from exc
        except (self._websocket.WebSocketException, OSError) as exc:
            raise PageError(f"browser connection lost: {exc}") from exc
        msg = json.loads(raw)
        if "method" in msg:
            self.events.append(msg)
            self.on_event(msg)
        return msg

    def send(
        self,
        method: str,
        params: dict | None = None,
        session_id: str | None = None,
        timeout: float = 30,
    ) -> dict:
        self._id += 1
        mid = self._id
        payload: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session_id:
            payload["sessionId"] = session_id
        self.ws.send(json.dumps(payload))
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise PageError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})

    def wait_event(self, pred: Callable[[dict], bool], since: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.events):
                if pred(self.events[i]):
                    return self.events[i]
                i += 1
            self._recv(deadline)


class Page:
    """Handle passed to ``actions``: evaluate JS in the page (and read its frames)."""

    def __init__(self, cdp: _CDP, session_id: str, deadline: float):
        self._cdp = cdp
        self.session_id = session_id
        self.deadline = deadline

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise PageError("page check timed out")
        return remaining

    def send(self, method: str, params: dict | None = None) -> dict:
        return self._cdp.send(method, params, self.session_id, timeout=self._remaining())

    def evaluate(self, expression: str, context_id: int | None = None) -> Any:
        """Evaluate ``expression`` (promises are awaited) and return its JSON value."""
        params: dict[str, Any] = {
            "expression": expression,
            "returnByValue": True,
            "awaitPromise": True,
            "userGesture": True,
        }
        if context_id is not None:
            params["contextId"] = context_id
        res = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in res:
            raise PageError(f"evaluation failed: {_exception_text(res['exceptionDetails'])}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15, interval: float = 0.05) -> Any:
        """Poll ``expression`` until truthy; return its value or raise ``PageError``."""
        end = min(self.deadline, time.monotonic() + timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= end:
                raise PageError(f"timed out waiting for: {expression[:200]}")
            time.sleep(interval)

    def child_frames(self) -> list[dict]:
        tree = self.send("Page.getFrameTree")["frameTree"]
        out: list[dict] = []

        def walk(node: dict) -> None:
            for child in node.get("childFrames", []):
                out.append(child["frame"])
                walk(child)

        walk(tree)
        return out

    def frame_context(self, frame_id: str) -> int:
        """An execution context in ``frame_id`` (works for opaque-origin data: iframes)."""
        res = self.send(
            "Page.createIsolatedWorld", {"frameId": frame_id, "worldName": "evosweep-check"}
        )
        return res["executionContextId"]


def _remote_object_text(obj: dict) -> str:
    if "value" in obj:
        v = obj["value"]
        return v if isinstance(v, str) else json.dumps(v)
    return obj.get("description") or obj.get("unserializableValue") or obj.get("type", "")


def _exception_text(details: dict) -> str:
    exc = details.get("exception") or {}
    return exc.get("description") or details.get("text") or "exception"


def _is_ignorable(msg: ConsoleMessage) -> bool:
    ref = msg.url or msg.text
    if "/favicon.ico" in ref:
        return True
    return (
        msg.source == "log:network"
        and msg.url.startswith(EXTERNAL_SCHEMES)
        and any(code in msg.text for code in OFFLINE_NET_ERRORS)
    )


_COLLECT_JS = """(() => ({
  url: location.href,
  title: document.title,
  readyState: document.readyState,
  text: document.body ? document.body.innerText : "",
  images: Array.from(document.images).map(img => {
    const src = img.getAttribute("src") || "";
    return {src_kind: src.startsWith("data:") ? "data" : "other", src_prefix: src.slice(0, 40),
            complete: img.complete, natural_width: img.naturalWidth,
            natural_height: img.naturalHeight};
  }),
}))()"""

_IDLE_JS = """(() => document.readyState === "complete" && !!document.body
  && document.body.innerText.trim().length > 0
  && Array.from(document.images).every(i => i.complete)
  && (%s))()"""


def _start_browser(binary: str, profile: str, deadline: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # own process group: kill the browser and all its children
    )
    lines: queue.Queue[str | None] = queue.Queue()
    tail: list[str] = []

    def reader() -> None:  # keep draining stderr so chromium never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            del tail[:-40]
            if "DevTools listening on" in line:
                lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True, name="chromium-stderr").start()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PageError("chromium did not print its DevTools URL in time")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise PageError("chromium exited early:\n" + "".join(tail))
            return proc, line.split("DevTools listening on", 1)[1].strip()
    except BaseException:
        _kill(proc)
        raise


def _kill(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no child of the group lingers.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def inspect_page(
    html_path: str | os.PathLike,
    actions: Callable[[Page], Any] | None = None,
    timeout: float = 60,
    ready_expression: str | None = None,
) -> PageReport:
    """Open ``html_path`` in a fresh headless Chromium and report on it.

    Waits for ``Page.loadEventFired``, then polls until the page is idle: readyState
    ``complete``, non-empty body text, every ``<img>`` complete and ``ready_expression``
    (optional JS) truthy.  Then runs ``actions(page)`` (its return value becomes
    ``action_result``) and collects text and images.  Console errors are collected for the
    whole visit.  The browser is always killed.  Raises ``ChromiumUnavailable`` or
    ``PageError``.
    """
    binary = ensure_chromium()
    start = time.monotonic()
    deadline = start + timeout
    url = Path(html_path).resolve().as_uri()
    errors: list[ConsoleMessage] = []
    ignored: list[ConsoleMessage] = []
    session: dict[str, str] = {}

    def on_event(msg: dict) -> None:
        if session.get("id") and msg.get("sessionId") != session["id"]:
            return
        method, p = msg["method"], msg.get("params", {})
        item = None
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(_remote_object_text(a) for a in p.get("args", []))
            frames = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            item = ConsoleMessage("console", text, frames[0].get("url", ""))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            item = ConsoleMessage("exception", _exception_text(d), d.get("url", ""))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            item = ConsoleMessage(f"log:{entry.get('source')}", entry.get("text", ""))
            item.url = entry.get("url", "")
        if item is not None:
            item.url = item.url[:300]  # data: URLs can be megabytes long
            (ignored if _is_ignorable(item) else errors).append(item)

    with tempfile.TemporaryDirectory(prefix="evosweep-chromium-") as profile:
        proc = None
        cdp = None
        try:
            proc, ws_url = _start_browser(binary, profile, deadline)
            cdp = _CDP(ws_url, on_event, timeout=max(1.0, deadline - time.monotonic()))
            remaining = lambda: max(0.1, deadline - time.monotonic())  # noqa: E731
            target = cdp.send("Target.createTarget", {"url": "about:blank"}, timeout=remaining())
            attached = cdp.send(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                timeout=remaining(),
            )
            sid = attached["sessionId"]
            session["id"] = sid
            page = Page(cdp, sid, deadline)
            for domain in ("Runtime", "Log", "Page"):
                page.send(f"{domain}.enable")
            mark = len(cdp.events)
            nav = page.send("Page.navigate", {"url": url})
            if nav.get("errorText"):
                raise PageError(f"navigation to {url} failed: {nav['errorText']}")
            cdp.wait_event(
                lambda m: m["method"] == "Page.loadEventFired" and m.get("sessionId") == sid,
                mark,
                remaining(),
            )
            page.wait_for(_IDLE_JS % (ready_expression or "true"), timeout=remaining())
            action_result = actions(page) if actions else None
            info = page.evaluate(_COLLECT_JS)
        finally:
            if cdp is not None:
                cdp.close()
            if proc is not None:
                _kill(proc)
    return PageReport(
        url=info["url"],
        title=info["title"],
        ready_state=info["readyState"],
        text=info["text"],
        images=[ImageInfo(**i) for i in info["images"]],
        console_errors=errors,
        ignored_errors=ignored,
        action_result=action_result,
        elapsed=time.monotonic() - start,
    )


# --------------------------------------------------------------------------- Snakemake report

# Snakemake 9.x report app (snakemake/report/html_reporter/template): globals `results`
# ({path: {mime_type, data_uri, caption, labels, ...}}) and `categories`
# ({category: {subcategory: [path, ...]}}) are embedded as <script> blocks; React renders a
# <nav> (menu -> category -> subcategory table of results with view/info buttons) and a
# content pane (the last child of `#app > div`) that shows the selected image (<img>) or
# HTML/PDF (<iframe>).  Non-viewable results (e.g. CSV) get a download link instead.
_REPORT_JS = r"""
window.__evo = (() => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  async function waitFor(fn, what, ms = 10000) {
    const end = performance.now() + ms;
    for (;;) {
      let v; try { v = fn(); } catch (e) { v = undefined; }
      if (v) return v;
      if (performance.now() > end) throw new Error("timed out waiting for " + what);
      await sleep(25);
    }
  }
  const navEl = () => document.querySelector("#app nav");
  const contentEl = () => document.querySelector("#app > div").lastElementChild;
  const linkLabel = a => (a.querySelector("span") || a).textContent.trim();
  const panelLinks = () => Array.from(navEl().querySelectorAll(":scope > div > div.p-3 a"));
  const rows = () => Array.from(navEl().querySelectorAll("table tbody tr"));
  const pathOfUri = uri => Object.keys(results).find(p => results[p].data_uri === uri);
  function plan() {
    const res = {};
    for (const [p, r] of Object.entries(results)) res[p] = {mime_type: r.mime_type, name: r.name};
    return {categories, results: res};
  }
  async function home() {
    const h = await waitFor(() => navEl().querySelector("nav ol li a"), "home breadcrumb");
    h.click();
    await waitFor(() => panelLinks().some(a => linkLabel(a) === "Workflow"), "main menu");
  }
  async function menuEntries() { await home(); return panelLinks().map(linkLabel); }
  async function openCategory(cat, sub) {
    await home();
    const label = Object.keys(categories).length === 1 ? "Results" : cat;
    const a = await waitFor(() => panelLinks().find(x => linkLabel(x) === label),
                            "menu entry " + label);
    a.click();
    if (Object.keys(categories[cat]).length > 1) {
      const s = await waitFor(() => !navEl().querySelector("table") &&
                              panelLinks().find(x => linkLabel(x) === sub), "subcategory " + sub);
      s.click();
    }
    await waitFor(() => rows().length > 0, "result rows of " + cat + "/" + sub);
    return rows().map((tr, i) => {
      const btn = tr.querySelector("td:last-child a");
      const dl = btn && btn.hasAttribute("download");
      return {index: i, download: !!dl, label: tr.querySelector("td").textContent.trim(),
              path: dl ? pathOfUri(btn.getAttribute("href")) : null};
    });
  }
  function describe(path, how) {
    const r = results[path];
    const c = contentEl();
    const img = Array.from(c.querySelectorAll("img")).find(i => i.getAttribute("src") === r.data_uri);
    const frame = Array.from(c.querySelectorAll("iframe")).find(f => f.getAttribute("src") === r.data_uri);
    return {path, how, img: img ? {src_prefix: img.getAttribute("src").slice(0, 40),
                                   complete: img.complete, natural_width: img.naturalWidth,
                                   natural_height: img.naturalHeight} : null,
            iframe: frame ? {src_prefix: frame.getAttribute("src").slice(0, 40)} : null,
            content_tags: Array.from(c.querySelectorAll("*")).slice(0, 5).map(x => x.tagName)};
  }
  async function shown(path) {
    const uri = results[path].data_uri;
    await waitFor(() => Array.from(contentEl().querySelectorAll("img, iframe"))
                          .some(x => x.getAttribute("src") === uri), "content for " + path, 5000)
      .catch(() => null);
    const img = Array.from(contentEl().querySelectorAll("img")).find(i => i.getAttribute("src") === uri);
    if (img) {
      await waitFor(() => img.complete, "image load " + path, 5000).catch(() => null);
      try { await img.decode(); } catch (e) {}
    }
  }
  async function clickRow(index) {
    const before = contentEl().innerHTML;
    const btn = rows()[index].querySelector("td:last-child a");
    btn.click();
    // wait for React to render the new content (or give up: nothing shown)
    const el = await waitFor(() => {
      const x = contentEl().querySelector("img[src^='data:'], iframe[src^='data:']");
      return x && contentEl().innerHTML !== before ? x : null;
    }, "content after click", 5000).catch(() => null);
    const path = el ? pathOfUri(el.getAttribute("src")) : null;
    if (path) await shown(path);
    return path ? describe(path, "menu") : {path: null, how: "menu"};
  }
  async function viaResultInfo(path) {
    // Fallback for results without their own row (e.g. hidden behind a label toggle):
    // the app's result-info panel has a view button for exactly this result.
    if (typeof app === "undefined") return {path, how: "unreachable"};
    app.showResultInfo(path);
    const btn = await waitFor(() => navEl().querySelector("ul li span a[type=button]"),
                              "view button in result info of " + path, 5000).catch(() => null);
    if (!btn) return {path, how: "unreachable"};
    if (btn.hasAttribute("download")) return {path, how: "resultinfo", download: true};
    btn.click();
    await shown(path);
    return describe(path, "resultinfo");
  }
  function dataUri(path) { return results[path].data_uri; }
  return {plan, menuEntries, openCategory, clickRow, viaResultInfo, dataUri};
})();
true
"""

_GENERAL_MENU = ("Workflow", "Statistics", "About")
_IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif", "image/webp")
_TABLE_MIMES = ("text/csv", "text/tab-separated-values", "text/tsv")


def _kind(mime: str) -> str:
    if mime in _IMAGE_MIMES:
        return "image"
    if mime in _TABLE_MIMES:
        return "table"
    if mime == "text/html":
        return "html"
    if mime == "application/pdf":
        return "pdf"
    return "other"


def _decode_data_uri(uri: str) -> bytes:
    head, _, data = uri.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(data)
    return urllib.parse.unquote_to_bytes(data)


def _check_table(text: str, mime: str) -> tuple[bool, str]:
    delim = "\t" if "tab" in mime or "tsv" in mime else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if r]
    if len(rows) < 2:
        return False, f"table has {len(rows)} row(s) (need a header and data)"
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        return False, f"ragged table: row widths {sorted(widths)}"
    return True, f"{len(rows) - 1} data rows x {widths.pop()} columns"


def _check_iframe(page: Page, uri: str) -> tuple[bool, str]:
    """Find the data: iframe's frame and read its document through an isolated world."""
    end = time.monotonic() + 10
    while True:
        frames = [f for f in page.child_frames() if f.get("url", "")[:200] == uri[:200]]
        if frames:
            ctx = page.frame_context(frames[-1]["id"])
            state = page.evaluate(
                "({ready: document.readyState, text: document.body ? document.body.innerText : '',"
                " tables: document.querySelectorAll('table').length})",
                context_id=ctx,
            )
            if state["ready"] == "complete" and state["text"].strip():
                return (
                    True,
                    f"iframe document: {state['tables']} <table>, text {state['text'][:60]!r}",
                )
        if time.monotonic() > end:
            return False, "iframe with the result never loaded a non-empty document"
        time.sleep(0.05)


def figures_shown(
    html_path: str | os.PathLike, category: str | None = None, timeout: float = 60
) -> dict:
    """Navigate a Snakemake report like a user and check every result of ``category``.

    ``category=None`` checks every category.  For each category: back to the main menu
    (home breadcrumb), click the category's menu entry (labelled "Results" when the report
    has a single category), the subcategory if there are several, then the view button of
    every row of the results table.  Results without their own row are reached through the
    app's result-info panel (``how == "resultinfo"``).

    Returns ``{"menu": [...], "categories": [...], "results": {path: status}, "page":
    PageReport}``; ``categories`` are the category names as the menu shows them, and each
    status has ``category``, ``subcategory``, ``mime_type``, ``kind`` (image, table, html,
    pdf, other), ``how`` (menu, resultinfo, unreachable), ``ok`` and ``detail``:

    * image: ok if an ``<img>`` with the result's ``data:`` src is displayed in the content
      pane, complete, with naturalWidth > 0 (``natural_width``/``natural_height`` given);
    * table (CSV/TSV): the report app does not render these inline; its view button is a
      download link.  ok if the row is listed and the link's ``data:`` URI decodes to a
      rectangular table with a header and at least one data row;
    * html: ok if the result's ``data:`` iframe loaded a non-empty document (read via CDP);
    * pdf/other: ok if the ``data:`` iframe / download link is present.
    """

    def actions(page: Page) -> dict:
        page.evaluate(_REPORT_JS)
        plan = page.evaluate("__evo.plan()")
        menu = page.evaluate("__evo.menuEntries()")
        cats = plan["categories"]
        if category is not None and category not in cats:
            raise PageError(f"category {category!r} not in report (has {sorted(cats)})")
        statuses: dict[str, dict] = {}
        for cat in sorted(cats):
            if category is not None and cat != category:
                continue
            for sub in sorted(cats[cat]):
                row_info = page.evaluate(
                    f"__evo.openCategory({json.dumps(cat)}, {json.dumps(sub)})"
                )
                seen: dict[str, dict] = {}
                for row in row_info:
                    if row["download"]:
                        if row["path"]:
                            seen[row["path"]] = {
                                "path": row["path"],
                                "how": "menu",
                                "download": True,
                            }
                        continue
                    res = page.evaluate(f"__evo.clickRow({row['index']})")
                    if res.get("path"):
                        seen[res["path"]] = res
                        res["iframe_ok"] = (
                            _check_iframe(
                                page, page.evaluate(f"__evo.dataUri({json.dumps(res['path'])})")
                            )
                            if res.get("iframe")
                            and _kind(plan["results"][res["path"]]["mime_type"]) == "html"
                            else None
                        )
                for path in cats[cat][sub]:
                    if path not in seen:
                        res = page.evaluate(f"__evo.viaResultInfo({json.dumps(path)})")
                        if res.get("iframe"):
                            res["iframe_ok"] = _check_iframe(
                                page, page.evaluate(f"__evo.dataUri({json.dumps(path)})")
                            )
                        seen[path] = res
                    statuses[path] = _status(
                        page, cat, sub, path, plan["results"][path], seen[path]
                    )
        shown_cats = [m for m in menu if m not in _GENERAL_MENU]
        return {"menu": menu, "categories": shown_cats, "results": statuses}

    report = inspect_page(
        html_path,
        actions=actions,
        timeout=timeout,
        ready_expression="typeof categories !== 'undefined' && !!document.querySelector('#app nav')",
    )
    out = dict(report.action_result)
    out["page"] = report
    return out


def _status(page: Page, cat: str, sub: str, path: str, meta: dict, seen: dict) -> dict:
    mime = meta["mime_type"]
    kind = _kind(mime)
    st: dict[str, Any] = {
        "category": cat,
        "subcategory": sub,
        "mime_type": mime,
        "kind": kind,
        "how": seen.get("how", "unreachable"),
        "ok": False,
        "detail": "",
    }
    if st["how"] == "unreachable":
        st["detail"] = "no way to display this result was found in the app"
        return st
    if seen.get("download"):
        uri = page.evaluate(f"__evo.dataUri({json.dumps(path)})")
        if not uri.startswith("data:"):
            st["detail"] = f"download link is not a data: URI: {uri[:40]}"
            return st
        if kind == "table":
            text = _decode_data_uri(uri).decode("utf-8", "replace")
            st["ok"], st["detail"] = _check_table(text, mime)
        else:
            st["ok"], st["detail"] = True, "download link with data: URI"
        return st
    img, frame = seen.get("img"), seen.get("iframe")
    if kind == "image":
        if img is None:
            st["detail"] = (
                f"no <img> with the result's data: src displayed (saw {seen.get('content_tags')})"
            )
        else:
            st.update(natural_width=img["natural_width"], natural_height=img["natural_height"])
            st["ok"] = img["complete"] and img["natural_width"] > 0
            st["detail"] = (
                f"<img> {img['natural_width']}x{img['natural_height']} complete={img['complete']}"
            )
        return st
    if frame is None:
        st["detail"] = "no <iframe> with the result's data: src displayed"
        return st
    if seen.get("iframe_ok") is not None:
        st["ok"], st["detail"] = seen["iframe_ok"]
    else:
        st["ok"], st["detail"] = True, f"<iframe> {frame['src_prefix']}"
    return st
