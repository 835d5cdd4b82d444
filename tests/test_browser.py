"""The real-browser tests: the app served by `streamlit run`, driven by Playwright in Debian's chromium.

Starts the server on 127.0.0.1 with a temporary LAB_HOME, clicks Start with the defaults, waits for
the loss chart to show 3 epochs, draws a stroke on the Predict canvas and waits for probabilities.
Screenshots go to the test's tmp dir (and to docs/screenshots when UPDATE_SCREENSHOTS=1). A second,
short test serves a page that raises and checks that the browser sees the error's type, not its
message (`.streamlit/config.toml`, client.showErrorDetails).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.hostile import hostile_uploads

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")]
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


PAGES = [("", "Latest runs", "home"), ("Transforms", "rounding vs truncation", "transforms"), ("Runs", "Compare", "runs"),
         ("Sweeps", "New sweep", "sweeps"), ("Tensor_ops", "One-hot labels", "tensor_ops")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(script: str, log_path: Path, lab_home: Path):
    """`streamlit run script` from the repository (so .streamlit/config.toml applies); yields its URL."""
    port = free_port()
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LAB_HOME": str(lab_home)},
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200, 60)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)         # the server and the worker it started
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def server(tmp_path, lab_home):
    with serve("app.py", tmp_path / "server.log", lab_home) as url:
        yield url


def wait_for(check, seconds: float):
    deadline = time.time() + seconds
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.3)


def chart_points(page, title: str) -> int:
    """Points in the first trace of the plotly chart with this title (0 when absent)."""
    return page.evaluate("""(title) => {
        for (const gd of document.querySelectorAll('.js-plotly-plot')) {
            const t = String((gd.layout && gd.layout.title && gd.layout.title.text) || '');
            const full = gd._fullData || [];
            if (t.replace(/<[^>]*>/g, '') === title && full.length && full[0].x) return full[0].x.length;
        }
        return 0;
    }""", title)


def scroll_to_chart(page, title: str) -> None:
    """Scroll the plotly chart with this title to the middle of the viewport (for the screenshot)."""
    page.evaluate("""(title) => {
        for (const gd of document.querySelectorAll('.js-plotly-plot')) {
            const t = String((gd.layout && gd.layout.title && gd.layout.title.text) || '');
            if (t.replace(/<[^>]*>/g, '') === title) { gd.scrollIntoView({block: 'center'}); return; }
        }
    }""", title)


def draw_stroke(page) -> None:
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(x + i, y + i * box["height"] * 0.04)
    page.mouse.up()


def check_hostile_uploads(page) -> None:
    page.get_by_role("tab", name="Upload").click()
    chooser = page.locator("input[type=file]").last
    for name, data, expected in hostile_uploads():
        for attempt in range(3):        # a file set while the page still reruns for the last one can be dropped
            page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden", timeout=30_000)
            chooser.set_input_files(files=[{"name": name, "mimeType": "image/png", "buffer": data}])
            try:
                page.get_by_text(name, exact=True).first.wait_for(timeout=10_000)
                break
            except Exception:
                if attempt == 2:
                    raise
        page.locator(f"text={expected} >> visible=true").first.wait_for(timeout=30_000)
        assert page.get_by_text("Traceback").count() == 0, name


def test_train_then_draw_and_predict(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{server}/Train")
        page.get_by_role("button", name="Start").click(timeout=60_000)
        wait_for(lambda: chart_points(page, "Loss") >= 3, 120)
        page.screenshot(path=shots / "train_form.png", full_page=True)
        page.get_by_text("Why it ended").wait_for(timeout=120_000)
        scroll_to_chart(page, "Loss")
        page.wait_for_timeout(1000)                       # let the charts redraw after the scroll
        page.screenshot(path=shots / "train.png")        # the finished run's charts, where the view is
        page.goto(f"{server}/Predict")
        draw_stroke(page)
        page.get_by_text("Prediction").first.wait_for(timeout=60_000)
        assert page.get_by_text("confident").count() >= 1
        page.screenshot(path=shots / "predict.png", full_page=True)
        check_hostile_uploads(page)
        for path, text, shot in PAGES:
            page.goto(f"{server}/{path}")
            page.get_by_text(text).first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)                   # let charts finish drawing
            assert page.get_by_text("Traceback").count() == 0, path
            assert page.get_by_text("Deploy", exact=True).count() == 0, path      # client.toolbarMode
            page.screenshot(path=shots / f"{shot}.png", full_page=True)
        browser.close()
    names = ["train", "train_form", "predict"] + [shot for _, _, shot in PAGES]
    assert all((shots / f"{name}.png").stat().st_size > 10_000 for name in names)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, target / shot.name)


def test_an_unexpected_error_shows_its_type_and_keeps_its_message_in_the_log(tmp_path, lab_home):
    from playwright.sync_api import sync_playwright

    script = tmp_path / "broken.py"
    script.write_text('import streamlit as st\nst.title("A broken page")\nraise RuntimeError("secret /srv/lab/path")\n')
    with serve(str(script), tmp_path / "server.log", lab_home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("RuntimeError", exact=False).first.wait_for(timeout=60_000)
        shown = page.inner_text("body")
        browser.close()
    assert "A broken page" in shown and "secret" not in shown and "Traceback" not in shown
    assert "secret /srv/lab/path" in (tmp_path / "server.log").read_text()     # for whoever runs the server
