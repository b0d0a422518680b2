"""The headless-Chromium report checker (tests/browser.py) on a tiny Snakemake report."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from browser import chromium_or_skip, figures_shown, inspect_page

SNAKEMAKE = Path(sys.executable).with_name("snakemake")

DEMO_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input:
            "results/plot.png",
            "results/table.csv",
            "results/table.html",


    rule plot:
        output:
            report("results/plot.png", caption="caption.rst", category="Figures"),
        run:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(3, 2))
            ax.plot([0, 1, 2], [0, 1, 4])
            fig.savefig(output[0], dpi=50)


    rule table:
        output:
            csv=report("results/table.csv", caption="caption.rst", category="Tables"),
            html=report("results/table.html", caption="caption.rst", category="Tables"),
        run:
            with open(output.csv, "w") as fh:
                fh.write("a,b\\n1,2\\n3,4\\n")
            with open(output.html, "w") as fh:
                fh.write("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>")
    """
)

# 1x1 transparent PNG
GOOD_PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def closed_loopback_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BROKEN_PAGE = """<!doctype html>
<html><head><title>broken</title></head>
<body>
<p>some text so the page counts as rendered</p>
<img id="good" src="{good_png}">
<img id="broken" src="data:image/png;base64,AAAAbm90IGEgcG5n">
<!-- external resource on a closed loopback port: blocked, must be ignored -->
<img id="external" src="http://127.0.0.1:{port}/missing.png">
<script>throw new Error("boom from the page");</script>
</body></html>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    if not SNAKEMAKE.exists():
        pytest.skip(f"no snakemake next to {sys.executable}")
    work = tmp_path_factory.mktemp("reportdemo")
    (work / "Snakefile").write_text(DEMO_SNAKEFILE)
    (work / "caption.rst").write_text("A demo result.\n")
    for args in (["--cores", "1", "--quiet"], ["--report", "report.html"]):
        res = subprocess.run(
            [str(SNAKEMAKE), *args], cwd=work, capture_output=True, text=True, timeout=300
        )
        assert res.returncode == 0, res.stderr[-3000:]
    return work / "report.html"


def test_demo_report_shows_every_result(chromium, demo_report):
    shown = figures_shown(demo_report)
    page = shown["page"]
    assert not page.console_errors, page.console_errors
    assert page.title == "Snakemake Report"
    assert shown["categories"] == ["Figures", "Tables"]

    results = shown["results"]
    assert set(results) == {"results/plot.png", "results/table.csv", "results/table.html"}
    figures = [r for r in results.values() if r["kind"] == "image"]
    tables = [r for r in results.values() if r["category"] == "Tables"]
    assert len(figures) == 1 and len(tables) == 2
    for path, status in results.items():
        assert status["ok"], (path, status)
    assert all(f["natural_width"] > 0 for f in figures)
    assert results["results/table.csv"]["detail"] == "2 data rows x 2 columns"
    assert "1 <table>" in results["results/table.html"]["detail"]

    # Restricting to one category checks only that category.
    only = figures_shown(demo_report, category="Figures")
    assert set(only["results"]) == {"results/plot.png"}
    assert only["results"]["results/plot.png"]["ok"]


def test_helper_reports_exceptions_and_broken_images(chromium, tmp_path):
    html = tmp_path / "broken.html"
    port = closed_loopback_port()
    html.write_text(BROKEN_PAGE.format(good_png=GOOD_PNG, port=port))
    page = inspect_page(html, timeout=30)

    assert not page.ok
    assert any(
        m.source == "exception" and "boom from the page" in m.text for m in page.console_errors
    ), page.console_errors
    # the blocked loopback image is an offline-network error: ignored, not reported
    assert not any(f"127.0.0.1:{port}" in (m.url + m.text) for m in page.console_errors)
    assert any(f"127.0.0.1:{port}" in m.url for m in page.ignored_errors), page.ignored_errors

    assert [i.src_kind for i in page.images] == ["data", "data", "other"]
    good, broken, _external = page.images
    assert good.loaded and good.natural_width == 1
    assert broken.complete and broken.natural_width == 0 and not broken.loaded
    assert "some text" in page.text
