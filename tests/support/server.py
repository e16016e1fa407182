"""The real app on a free loopback port for a test: built in this process (`build_demo` over `create_context`,
served by Gradio's own server in a thread) when its settings are the app's own, else `python app.py` in a
process of its own (settings that the input readers read process-wide, Gradio's environment, a test that reads
the server's memory, a bundle's own interpreter)."""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env_extra: dict | None, timeout: float, cwd: Path = ROOT, python: list | None = None, poll_s: float = 0.5):
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
            time.sleep(poll_s)


def stop(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# settings that only the app's state reads (mrnet.app.context): an in-process app can take them as its own
IN_PROCESS_SETTINGS = {"MRNET_WEIGHTS", "MRNET_AUTH", "MRNET_USERS", "MRNET_MCP", "MRNET_SHARE", "MRNET_DATA",
                       "MRNET_DATA_SPLIT", "MRNET_SCORES", "MRNET_FLAGS", "MRNET_COMPARE", "MRNET_COMPARE_SCORES",
                       "MRNET_CONCURRENCY", "MRNET_KEPT_ANALYSES_MB", "MRNET_MAX_ZIPS_MB", "MRNET_SHARE_DAYS",
                       "MRNET_SHARE_MB", "MRNET_SHARES"}


class InProcess:
    """What a test reads of an app process, for an app served in this one."""
    pid = os.getpid()

    def __init__(self, demo):
        self.demo = demo

    def poll(self):
        return None if self.demo.is_running else 0


@contextmanager
def serving(env_extra: dict | None = None):
    """The app built and served in this process, with `env_extra` over the environment's settings. A setting that
    stops the app (a malformed MRNET_AUTH) raises RuntimeError with the app's sentence, as a process would."""
    from mrnet.app.context import create_context
    from mrnet.app.ui import build_demo, serve
    from mrnet.core.errors import MRNetError
    from mrnet.core.settings import Settings
    try:
        config = Settings.from_env({**os.environ, **(env_extra or {})})
    except MRNetError as exc:
        raise RuntimeError(f"app exited early:\nerror: {exc}") from None
    ctx = create_context(config)
    demo = build_demo(ctx)
    try:
        serve(demo, ctx, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    except SystemExit as exc:
        ctx.close()
        raise RuntimeError(f"app exited early:\n{exc}") from None
    log = tempfile.TemporaryFile("w+")
    try:
        yield demo.local_url, InProcess(demo), log
    finally:
        demo.close()
        ctx.close()
        log.close()


@contextmanager
def running_app(env_extra: dict | None = None, timeout: float = 120, attempts: int = 2, cwd: Path = ROOT,
                python: list | None = None, process: bool | None = None):
    """The app on a free loopback port: in this process when it can be (`process=None`), or with `process=True`
    as `python app.py`; a second attempt on another port covers a port taken in between."""
    if process is None:
        process = cwd != ROOT or python is not None or not set(env_extra or {}) <= IN_PROCESS_SETTINGS
    if not process:
        with serving(env_extra) as running:
            yield running
        return
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
