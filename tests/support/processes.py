"""Starting and stopping real ``qcl node start`` processes for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from node.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


class NodeProcess:
    """A peer in its own process, serving HTTP on a loopback port."""

    def __init__(self, data_dir: Path, port: int | None = None, *, log_file: Path | None = None) -> None:
        """``log_file``: the node's output (stdout and stderr) is appended there, across restarts,
        instead of a pipe that a long-running node under faults could fill; see :meth:`log_tail`."""
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> NodeProcess:
        command = [sys.executable, "-m", "client.cli", "node", "start", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        if self.log_file is None:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:
            with open(self.log_file, "ab") as log:
                self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).json()["ok"]:
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"node did not become healthy in time: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        """The end of what the node wrote: its log file, else its stderr once it has exited."""
        if self.log_file is not None:
            return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""
        if self.process is not None and self.process.poll() is not None and self.process.stderr is not None:
            return self.process.stderr.read().decode(errors="replace")[-chars:]
        return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a power cut for the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def run_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "verify", "--data-dir", str(data_dir), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )
