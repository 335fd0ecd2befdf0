"""`vram-check serve` as a real process (its own session, so signals reach it and its workers as they would in
a container), configured through the environment, and driven over HTTP with signed deliveries."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.webhooks.signature import sign

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.secret = env["GITHUB_WEBHOOK_SECRET"]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.client = httpx.Client(timeout=10)

    def start(self, timeout: float = 90) -> ServeProcess:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1",
                                         "--port", str(port), "--log-level", "info"], env=self.env, cwd=ROOT,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            try:
                if self.client.get(f"{self.url}/healthz").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("serve did not become healthy")

    def deliver(self, event: str, payload: dict[str, Any], delivery_id: str | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
                   "X-Hub-Signature-256": sign(self.secret.encode(), body), "Content-Type": "application/json"}
        return self.client.post(f"{self.url}/webhook", content=body, headers=headers)

    def ping_seconds(self) -> float:
        """How long a signed ping takes to be answered (the service must stay responsive)."""
        started = time.perf_counter()
        response = self.deliver("ping", {"zen": "Design for failure.", "hook_id": 1})
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    def health(self) -> httpx.Response:
        return self.client.get(f"{self.url}/healthz")

    def worker_pids(self) -> list[int]:
        """The estimation worker processes: as /healthz lists them, else the service's forked descendants."""
        listed = self.health().json().get("worker_pids")
        if listed is not None:
            return [int(pid) for pid in listed]
        assert self.process is not None
        return [pid for pid in descendants(self.process.pid) if b"forkserver" not in _cmdline(pid)]

    def running_jobs(self) -> int:
        body = self.health().json()
        return int(body.get("running_jobs", body.get("pending_jobs", 0)))

    def signal_group(self, signum: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # nothing of the group may outlive the test
                os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        self.client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            out += [int(entry.name), *descendants(int(entry.name))]
    return out
