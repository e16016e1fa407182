"""Start the real app (python app.py) on a free loopback port for a test module."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_extra: dict | None, timeout: float, cwd: Path = ROOT, python: list | None = None):
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", **(env_extra or {}))
    log = tempfile.TemporaryFile("w+")  # the app's output, read back when it fails to start; gone when closed
    proc = subprocess.Popen((python or [sys.executable]) + ["app.py"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            text = log.read()
            log.close()
            raise RuntimeError(f"app exited early:\n{text}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return url, proc, log
        except OSError:
            if time.time() > deadline:
                stop(proc, log)
                raise TimeoutError("app did not start")
            time.sleep(0.5)


def stop(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@contextmanager
def running_app(env_extra: dict | None = None, timeout: float = 120, attempts: int = 2, cwd: Path = ROOT, python: list | None = None):
    """The app on a free loopback port; a second attempt on another port covers a port taken in between."""
    for attempt in range(attempts):
        try:
            url, proc, log = start_app(env_extra, timeout, cwd, python)
            break
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    try:
        yield url, proc, log
    finally:
        stop(proc, log)
