"""The app in a child process on a free loopback port: for the tests, the benchmarks and the screenshot script.

Nothing here is part of the app or the library.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(proc, url: str, timeout: float = 180) -> bool:
    """Wait until ``url`` answers (True) or ``proc`` exits or the time is up (False)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def spawn(*args: str, timeout: float = 180, output=None):
    """Start the app (``app.py``) in a child process on a free loopback port.

    Returns (process, url), url None when the app exited at start; ``output``
    is a file for what it prints (default: discarded).
    """
    import subprocess

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=ROOT,
                            env=env, stdout=output if output is not None else subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    if wait_for(proc, url, timeout):
        return proc, url
    if proc.poll() is not None:
        return proc, None
    proc.kill()
    raise RuntimeError("the app did not start in time")
