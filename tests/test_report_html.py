"""The interactive report: offline (plotly.min.js beside the page, no CDN), every stored string
escaped, and in a real headless Chromium: it loads without console errors, draws its figures,
sorts its table and is not a blank screenshot."""
import io
import json
import re
import sys
import time

import numpy as np
import pytest

import fastinit.cli as cli
import fastinit.sweep as sweep_mod
from fastinit import report_html
from fastinit.store import Store

from browser import Browser, find_chromium

pytest.importorskip("plotly")

EVIL = "<script>window.pwned=1</script>\"'><img src=x onerror=\"window.pwned=2\">&amp;"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A clean report and one whose stored strings try to break out of the page."""
    base = tmp_path_factory.mktemp("interactive")
    out = {}
    for name in ("clean", "evil"):
        db = base / f"{name}.db"
        spec = {"name": "s", "grid": {"scheme": ["he_normal", "zeros"], "seed": [0, 1],
                                      "depth": [1, 2]},
                "train": {"epochs": 2, "width": 8, "lr": 0.05}}
        sweep_mod.run_sweep(spec, db)
        if name == "evil":
            with Store(db) as s:
                s.con.execute("UPDATE runs SET activation = ?, scheme = scheme || ?",
                              (EVIL, EVIL))
        out[name] = report_html.write_interactive(db, base / name, "s")
    return out


def test_the_page_is_offline_and_escapes_every_stored_string(reports):
    page = open(reports["evil"]["interactive.html"]).read()
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script src="plotly.min.js">', "<script>"]     # ours, nothing else
    assert "http://" not in page.split("<script>")[0] and "cdn" not in page.lower()
    assert "<img" not in page and "window.pwned=1</script>" not in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;&quot;&#x27;&gt;&lt;img" in page
    data = page.split("var FIGURES = ", 1)[1].split(";\nObject.keys", 1)[0]
    assert "<" not in data and ">" not in data              # nothing can close the script
    figures = json.loads(data)
    assert set(figures) == {"fig-curves", "fig-loss", "fig-depth", "fig-variance",
                            "fig-symmetry"}
    names = {t.get("name") for f in figures.values() for t in f["data"]} - {None}
    assert any("&lt;script&gt;" in n for n in names)         # labels escaped for plotly too
    js = open(reports["evil"]["plotly.min.js"]).read(200)
    assert "plotly.js" in js


def test_cli_report_and_demo_write_the_interactive_page(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(cli, "DEMO_SPEC", {"name": "demo", "grid": {"seed": [0, 1]},
                                           "train": {"epochs": 1, "width": 8}})
    assert cli.main(["demo", "--out", str(tmp_path / "demo"), "--interactive"]) == 0
    out = capsys.readouterr().out
    assert f"and {tmp_path / 'demo' / 'interactive.html'}" in out
    assert (tmp_path / "demo" / "index.html").exists()             # the static one too
    assert cli.main(["report", str(tmp_path / "demo" / "demo.db"), "--out",
                     str(tmp_path / "rep"), "--interactive"]) == 0
    out = capsys.readouterr().out
    assert f"interactive report: {tmp_path / 'rep' / 'interactive.html'}" in out
    assert (tmp_path / "rep" / "plotly.min.js").exists() and (tmp_path / "rep" /
                                                              "curves.png").exists()
    assert cli.main(["report", str(tmp_path / "demo" / "demo.db"), "--out",
                     str(tmp_path / "plain"), "-q"]) == 0
    assert not (tmp_path / "plain" / "interactive.html").exists()   # static stays the default


def test_without_plotly_the_error_names_the_extra(reports, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(ImportError, match=r"fastinit report --interactive needs plotly: pip "
                                          r"install plotly \(or pip install "
                                          r"'fastinit\[interactive\]'\)"):
        report_html.write_interactive(tmp_path / "any.db", tmp_path)


def _nonwhite_fraction(png: bytes) -> float:
    image = pytest.importorskip("PIL.Image")
    pixels = np.asarray(image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return float(np.mean(np.any(pixels < 245, axis=-1)))


@pytest.mark.parametrize("which", ["clean", "evil"])
def test_chromium_loads_the_page_without_errors_and_draws_it(reports, tmp_path, which):
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); .ci/run "
                    "installs it")
    page = reports[which]["interactive.html"]
    with Browser(tmp_path / "profile") as b:
        b.open(f"file://{page}")
        drawn = 0
        for _ in range(100):                       # plotly draws after the load event
            drawn = b.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg')"
                               ".length")
            if drawn >= 5:
                break
            time.sleep(0.1)
        assert drawn >= 5, "the figures were not drawn"
        assert b.evaluate("window.pwned === undefined")
        first = "document.querySelector('#summary tbody tr').cells[6].textContent"
        b.evaluate("document.querySelectorAll('#summary th')[6].click()")
        low = b.evaluate(first)
        b.evaluate("document.querySelectorAll('#summary th')[6].click()")
        high = b.evaluate(first)
        assert float(low) <= float(high)          # sorted up, then down
        png = b.screenshot()
        assert not b.errors, b.errors
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert _nonwhite_fraction(png) > 0.02, "the screenshot is blank"
    if which == "evil":
        with open(tmp_path / "evil.png", "wb") as f:
            f.write(png)


def test_the_browser_check_hears_errors_and_sees_blank_pages(tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script src='missing.js'></script><script>"
                    "console.error('boom'); undefinedFunction();</script></body></html>")
    with Browser(tmp_path / "profile") as b:
        b.open(f"file://{page}")
        png = b.screenshot()
    assert any("boom" in e for e in b.errors)
    assert any("undefinedFunction" in e for e in b.errors)
    assert any("missing.js" in e for e in b.errors)
    assert _nonwhite_fraction(png) < 0.001
