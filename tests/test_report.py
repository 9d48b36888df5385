"""aevb report: one self-contained HTML page, checked as text and in a real headless browser."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aevb import TabularVAE, VAE, datasets
from aevb.cli import run as run_cli
from aevb.report.page import read_metrics

FAST = dict(latent_dim=2, hidden=(16,), epochs=3, batch_size=32)
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def images_of(page: str) -> list[Image.Image]:
    """Every <img> of the page, decoded; the page must inline them all as PNG."""
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), sources[:1]
    decoded = [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in sources]
    for image in decoded:
        image.load()  # raises on a truncated or damaged PNG
    return decoded


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits")
    data = datasets.load("digits-test")
    VAE(**FAST).fit(data, run_dir=run).save(run)
    return run


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    size = rng.normal(170, 10, 200)
    frame = pd.DataFrame({
        "height": size, "weight": 0.9 * size - 90 + rng.normal(0, 5, 200),
        "colour": rng.choice(["red", "green", "blue"], 200), "member": rng.random(200) < 0.3,
    })
    frame.loc[::7, "weight"] = np.nan
    frame.to_csv(run / "people.csv", index=False)
    TabularVAE(**FAST).fit(frame, run_dir=run).save(run)
    return run


@pytest.fixture(scope="module")
def digits_page(digits_run):
    out = digits_run / "report.html"
    assert run_cli(["report", str(digits_run), "digits-test", "--out", str(out), "--k", "5"]) == 0
    return out


@pytest.fixture(scope="module")
def table_page(table_run):
    out = table_run / "report.html"
    assert run_cli(["report", str(table_run), str(table_run / "people.csv"), "--out", str(out), "--k", "5"]) == 0
    return out


def test_metrics_are_read_as_written(digits_run):
    history = read_metrics(digits_run / "metrics.csv")
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]
    assert {"train_elbo", "val_elbo", "train_kl", "val_kl"} <= set(history[0])


def test_image_report_has_every_section(digits_page):
    page = digits_page.read_text(encoding="utf-8")
    for heading in ("Training curves", "Evaluation", "Samples beside real rows", "Reconstructions",
                    "Latent space", "Scores and the most unusual rows"):
        assert f"<h2>{heading}</h2>" in page
    assert "src=\"http" not in page and "<script" not in page  # nothing to fetch, nothing to run
    pictures = images_of(page)
    # curves, real, samples, real, reconstructions, latent map, histogram, unusual rows
    assert len(pictures) == 8 and all(p.width > 0 and p.height > 0 for p in pictures)


def test_table_report_compares_columns(table_page):
    page = table_page.read_text(encoding="utf-8")
    assert "<h2>Columns: real and synthetic</h2>" in page and "<h2>Correlations</h2>" in page
    assert "<th>colour</th>" in page  # rows shown as a table with the frame's columns
    images_of(page)


def test_report_without_data_shows_samples(digits_run, tmp_path):
    out = tmp_path / "report.html"
    assert run_cli(["report", str(digits_run), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "<h2>Samples</h2>" in page and "<h2>Latent space</h2>" not in page
    assert len(images_of(page)) == 2


def test_report_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert run_cli(["report", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")]) == 2
    assert "aevb: error:" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _chromium() -> Path | None:
    """Debian's chromium; under CI it is installed when missing."""
    if not CHROMIUM.exists() and os.environ.get("CI") == "true" and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, timeout=900)
    return CHROMIUM if CHROMIUM.exists() else None


def test_report_in_a_headless_browser(digits_page, table_page, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium at /usr/bin/chromium")
    pages = [digits_page, table_page]
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=BROWSER_FLAGS
        )
        try:
            for path in pages:
                page = browser.new_page()
                errors = []
                page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(path.as_uri(), wait_until="load")
                widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
                assert errors == [], errors
                assert len(widths) >= 5 and all(w > 0 for w in widths), widths
                page.close()
        finally:
            browser.close()
