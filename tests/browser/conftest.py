"""Fixtures for the end-to-end tests: the app as a real ``streamlit run`` subprocess and
headless Debian Chromium driven by Playwright (sync API, no ``playwright install``).

The app runs on the bundled model when ``pretrained/vrnn`` exists (or on the checkpoints
named by ``VRNN_APP_VRNN_MODEL`` / ``VRNN_APP_RNN_MODEL``); otherwise on a tiny untrained
checkpoint made here (the page is the same, the ink is noise), and the tests say so. Screenshots go to a temporary folder, or to ``docs/`` with
``VRNN_SCREENSHOTS=docs``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-renderer-backgrounding",
                 "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"streamlit did not become healthy in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def chromium_path():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian chromium (apt-get install chromium) for browser tests")
    pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def model_env(tmp_path_factory):
    """Env vars that pick the app's models: ``VRNN_APP_*_MODEL`` when set, else the bundled
    ones, else tiny stand-ins."""
    if os.environ.get("VRNN_APP_VRNN_MODEL"):
        return {"kind": f"VRNN_APP_VRNN_MODEL={os.environ['VRNN_APP_VRNN_MODEL']}"}
    if (ROOT / "pretrained" / "vrnn" / "config.json").exists():
        return {"kind": "bundled"}
    import torch

    import vrnn

    root = tmp_path_factory.mktemp("e2e-models")
    torch.manual_seed(0)
    vrnn.VRNN(vrnn.VRNNConfig(hidden=32, latent=4, mixtures=3, x_features=16, z_features=16, mlp=32)).save(root / "vrnn")
    vrnn.RNNGMM(vrnn.VRNNConfig(model="rnn", hidden=32, latent=0, mixtures=3, x_features=16, mlp=32)).save(root / "rnn")
    env = {"kind": "tiny stand-in (pretrained/vrnn is missing)", "VRNN_APP_VRNN_MODEL": str(root / "vrnn")}
    if not (ROOT / "pretrained" / "rnn" / "config.json").exists():
        env["VRNN_APP_RNN_MODEL"] = str(root / "rnn")
    return env


@dataclass
class AppServer:
    url: str
    proc: subprocess.Popen
    log: Path

    def uncaught_errors(self) -> list[str]:
        """Tracebacks of script runs that failed (Streamlit logs "Uncaught app execution")."""
        text = self.log.read_text(errors="replace")
        return [chunk[:3000] for chunk in text.split("Uncaught app execution")[1:]]

    def warnings(self) -> list[str]:
        """Warning, error and traceback lines of the server log (Streamlit's own and the app's)."""
        bad = ("WARNING", "Warning", "ERROR", "Error", "Traceback", "warn(")
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("vrnn-app run "):  # the app's timing lines (VRNN_APP_TIMING)
                continue
            if any(b in line for b in bad):
                out.append(line[:400])
        return out


@pytest.fixture(scope="session")
def app_server(chromium_path, model_env, tmp_path_factory):
    """``streamlit run app.py`` on a free port, as an :class:`AppServer`."""
    port = _free_port()
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", VRNN_APP_TIMING="1",
               **{k: v for k, v in model_env.items() if k.startswith("VRNN_")})
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        print(f"\n[e2e] app at {url} on the {model_env['kind']} model")
        yield AppServer(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory):
    if os.environ.get("VRNN_SCREENSHOTS") == "docs":
        d = ROOT / "docs"
        d.mkdir(exist_ok=True)
        return d
    return tmp_path_factory.mktemp("screenshots")
