"""The Playwright report checker (tests/helpers/report_browser.py) on small pages and a tiny report."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.report_browser import figures_shown, inspect_page

SNAKEMAKE = Path(sys.executable).with_name("snakemake")

DEMO_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input:
            "results/plot.png",
            "results/table.csv",
            "results/table.html",
            expand("results/panel_{legend}.png", legend=["yes", "no"]),


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


    # Two results in one row: a label with two values becomes a toggle above the table.
    rule panel:
        output:
            report(
                "results/panel_{legend}.png",
                category="Panels",
                labels={"panel": "A", "legend": "{legend}"},
            ),
        run:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(2, 2))
            ax.plot([0, 1], [1, 0], label="line")
            if wildcards.legend == "yes":
                ax.legend()
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
NOT_A_PNG = "data:image/png;base64,AAAAbm90IGEgcG5n"

BROKEN_PAGE = f"""<!doctype html>
<html><head><title>broken</title></head>
<body>
<p>some text</p>
<img id="good" src="{GOOD_PNG}">
<img id="broken" src="{NOT_A_PNG}">
<script>console.error("logged by the page");</script>
<script>throw new Error("boom from the page");</script>
</body></html>
"""


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


def test_console_errors_exceptions_and_broken_images_are_reported(page, tmp_path):
    html = tmp_path / "broken.html"
    html.write_text(BROKEN_PAGE)
    checked = inspect_page(page, html)

    assert not checked.ok
    assert checked.title == "broken" and "some text" in checked.text
    assert any("logged by the page" in error for error in checked.console_errors)
    assert any(
        error.startswith("[exception]") and "boom from the page" in error
        for error in checked.console_errors
    ), checked.console_errors
    good, broken = checked.images
    assert good["loaded"] and good["natural_width"] == 1
    assert broken["complete"] and broken["natural_width"] == 0 and not broken["loaded"]


def test_a_clean_page_is_ok(page, tmp_path):
    html = tmp_path / "clean.html"
    html.write_text(f'<!doctype html><title>clean</title><p>text</p><img src="{GOOD_PNG}">')
    checked = inspect_page(page, html)
    assert checked.ok, checked


def test_demo_report_shows_every_result(page, demo_report):
    shown = figures_shown(page, demo_report)
    assert shown.console_errors == []
    assert shown.title == "Snakemake Report"
    assert shown.categories == ["Figures", "Panels", "Tables"]

    results = shown.results
    panels = {"results/panel_yes.png", "results/panel_no.png"}
    assert set(results) == {"results/plot.png", "results/table.csv", "results/table.html"} | panels
    for path, status in results.items():
        assert status["ok"], (path, status)
    for path in panels | {"results/plot.png"}:
        assert results[path]["kind"] == "image" and results[path]["natural_width"] > 0
    assert results["results/table.csv"]["detail"] == "2 data rows x 2 columns"
    assert "1 <table>" in results["results/table.html"]["detail"]


def test_one_category_can_be_checked_alone(page, demo_report):
    shown = figures_shown(page, demo_report, category="Figures")
    assert set(shown.results) == {"results/plot.png"}
    assert shown.results["results/plot.png"]["ok"]


def test_a_figure_that_does_not_decode_is_reported(page, demo_report, tmp_path):
    html = demo_report.read_text()
    broken, count = re.subn(r"data:image/png;[^\"]*filename=plot\.png;[^\"]*", NOT_A_PNG, html)
    assert count == 1
    path = tmp_path / "report.html"
    path.write_text(broken)

    shown = figures_shown(page, path)
    plot = shown.results["results/plot.png"]
    assert not plot["ok"] and plot["natural_width"] == 0, plot
    assert [path for path, status in shown.results.items() if not status["ok"]] == [
        "results/plot.png"
    ]
