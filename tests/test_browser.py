"""A student's notebook in a real browser: JupyterLab in headless Chromium, driven by Playwright.

As JupyterLab's own UI tests (Galata) do, the test starts ``jupyter lab`` on a free port with a token in a temporary
folder (its own settings, workspaces and config, so nothing of the user's leaks in), opens the released notebook 03
filled with its solution, runs all cells from the *Run* menu, and asserts what a student would see: the notebook's
title rendered as a level-1 heading (not a code block), the points in bold, and the self-check's verdict ("✓")
in an output, with no error output anywhere.

The browser is the distribution's ``chromium`` (``.ci/run`` installs it; Playwright downloads nothing). Set
``GPTEDU_SCREENSHOTS=docs`` to also write the screenshots to ``docs/`` (``notebook-top.png``, ``notebook-check.png``);
they are always written to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from gptedu.grading import build

ROOT = build.REPO_ROOT
CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "03_single_head.ipynb"
TITLE = "03 · One head of masked self-attention"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-extensions", "--disable-default-apps"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def jupyter_lab(tmp_path):
    """(base URL with token, folder served): JupyterLab on a free port, stopped afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    sources = build.source_notebooks(ROOT, "gpt_from_scratch")
    release = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    nbformat.write(build.fill_with_solutions(release, sources[NOTEBOOK]), work / NOTEBOOK)
    settings = tmp_path / "settings"
    # every cell stays in the DOM (JupyterLab 4 may otherwise leave cells outside the viewport unrendered)
    _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    port, token = _free_port(), os.urandom(16).hex()
    env = {**os.environ, "GPTEDU_QUICK": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "OMP_NUM_THREADS": "1"}
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--allow-root"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("jupyter lab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base, token, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
def test_jupyterlab_renders_and_runs_a_student_notebook(jupyter_lab, tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install the distribution's chromium (.ci/run does)"
    from playwright.sync_api import expect, sync_playwright

    base, token, _ = jupyter_lab
    shots = [tmp_path]
    if os.environ.get("GPTEDU_SCREENSHOTS"):
        shots.append(ROOT / os.environ["GPTEDU_SCREENSHOTS"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", timeout=60_000)
            panel = page.locator(".jp-NotebookPanel")
            expect(panel).to_be_visible(timeout=60_000)
            heading = panel.locator(".jp-MarkdownCell .jp-RenderedMarkdown h1").first
            expect(heading).to_be_visible(timeout=30_000)
            expect(heading).to_contain_text(TITLE)
            first_cell = panel.locator(".jp-Cell").first
            expect(first_cell.locator("strong", has_text="Points in this notebook: 20")).to_be_visible()
            assert first_cell.locator("pre").count() == 0, "the title cell renders as a code block"
            expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle").first).to_be_visible(timeout=60_000)
            page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()  # hide the files
            expect(page.locator("#jp-left-stack")).to_be_hidden()
            for folder in shots:
                folder.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(folder / "notebook-top.png"))

            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            verdict = panel.locator(".jp-OutputArea-output", has_text="✓").first
            expect(verdict).to_be_attached(timeout=90_000)
            verdict.scroll_into_view_if_needed()
            expect(verdict).to_be_visible()
            # every cell ran: no prompt still waiting ("[*]:" or empty), and none raised
            expect(panel.locator(".jp-CodeCell .jp-InputPrompt", has_text="*")).to_have_count(0, timeout=90_000)
            prompts = panel.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
            assert prompts and all(t.strip().startswith("[") and t.strip()[1:-2].isdigit() for t in prompts), prompts
            errors = panel.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
            assert errors.count() == 0, errors.all_inner_texts()[:2]
            assert "✗" not in verdict.inner_text(), verdict.inner_text()
            check_cell = verdict.locator("xpath=ancestor::div[contains(@class, 'jp-CodeCell')][1]")
            check_cell.scroll_into_view_if_needed()
            for folder in shots:
                check_cell.screenshot(path=str(folder / "notebook-check.png"))
        finally:
            browser.close()
