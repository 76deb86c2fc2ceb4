"""The report as a reader sees it: opened in headless Chromium (Debian's, driven by Playwright) at a
laptop's 1280 x 800 window."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from psystock import names
from tests.helpers.runs import finished, mlflow_run, small_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As a locked-down machine needs it: no sandbox for root, nothing fetched in the background.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_the_report_fits_the_window_shows_every_image_and_raises_no_error(store, btc_csv, tmp_path):
    from playwright.sync_api import sync_playwright

    main = finished(mlflow_run(store, "main", small_pipeline(btc_csv), timeout=900))
    report_run = json.loads(main.data.tags[names.TAG_STEP_RUNS])["report"]
    page_path = mlflow.artifacts.download_artifacts(f"runs:/{report_run}/report/report.html", dst_path=str(tmp_path))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"file://{page_path}", wait_until="load")
            widths = page.evaluate("[...document.images].map(image => image.naturalWidth)")
            document_width = page.evaluate("document.documentElement.scrollWidth")
            window_width = page.evaluate("window.innerWidth")
            first_paragraph = page.evaluate("document.querySelector('p').textContent")
        finally:
            browser.close()
    assert len(widths) >= 10 and all(width > 0 for width in widths)  # every image decoded
    assert errors == []
    assert document_width <= window_width == 1280  # wide tables scroll in their box, the page never sideways
    assert first_paragraph.startswith("On the holdout")
