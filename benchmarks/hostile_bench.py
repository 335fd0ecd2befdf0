"""Hostile-input benchmark (issue 13): each probe of the issue against the service as users run it, and the
cost of each input bound on its own.

Service: `python -m bot.cli serve` in a subprocess with the production defaults (2 worker processes),
configured from the environment; the fake GitHub REST server (tests/fakes/github.py) in its own process,
answering every request after `--github-latency-ms` (50: about github.com's latency). For each probe:
the probe is sent, and while its job runs a signed ping is sent every 100 ms; printed are the probe's
acknowledgement time, the pings' median and worst latency, and the time until the service is idle again
(/healthz pending_jobs = 0). Then the bounds alone, in this process: json_depth_ok on 5 MB shapes, the
slash-command parser and the diagnose scanner on 65 KB comments, the YAML parser on the bombs.

    nice .venv/bin/python benchmarks/hostile_bench.py [--github-latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import string
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fakes.service import comment_payload, fixture, pull_request_payload  # noqa: E402
from test_app_pull_request import FULL_8B, lora  # noqa: E402
from test_hostile_input import (  # noqa: E402
    DEEP,
    HOSTILE_DEEPSPEED,
    HOSTILE_NAME,
    HUGE_TARGET,
    POLICY,
    alias_bomb,
    long_alias,
)

from benchmarks.webhook_bench import free_port  # noqa: E402
from bot.webhooks.signature import sign  # noqa: E402

SECRET = "hostile-bench-secret"
TOKEN = "ghp_hostile_bench"
PULLS: dict[str, dict[str, str | None]] = {
    "alias bomb (600 B)": {"configs/bomb.yaml": alias_bomb(), "configs/good.yaml": lora()},
    "long-string alias (60 KB)": {"configs/long.yaml": long_alias(), "configs/good.yaml": lora()},
    "nested 500 deep (1.2 KB)": {"configs/deep.yaml": DEEP, "configs/good.yaml": lora()},
    "gpus=100000 nodes=100000": {"configs/huge.yaml": HUGE_TARGET, "configs/good.yaml": lora()},
    "hostile names and values": {HOSTILE_NAME: lora(), "configs/ds.yaml": HOSTILE_DEEPSPEED},
    "comment probes": {"configs/full.yaml": FULL_8B},
}


def serve_fake_github(port_file: str, latency_s: float) -> None:
    """Child process: the fake GitHub with one pull request per probe."""
    from fakes.github import FakeGitHub, FakeGitHubState

    state = FakeGitHubState(token=TOKEN)
    state.latency_s = latency_s
    heads = {}
    for index, files in enumerate(PULLS.values()):
        repo = f"bench/hostile-{index}"
        state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
        state.open_pull(repo, 1, head_files=files)
        state.repos[repo].permissions.update({"writer": "write", "stranger": "read"})
        heads[repo] = (state.repos[repo].pulls[1].head_sha, state.repos[repo].pulls[1].base_sha)
    with FakeGitHub(state) as fake:
        Path(port_file).write_text(json.dumps({"url": fake.url, "heads": heads}))
        threading.Event().wait()


def signed_headers(event: str, body: bytes) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET.encode(), body), "Content-Type": "application/json"}


class Pinger(threading.Thread):
    """A signed ping every 100 ms on its own connection; records each answer's latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        body = json.dumps(fixture("ping.json")).encode()
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                response = client.post(f"{self.url}/webhook", content=body, headers=signed_headers("ping", body))
                assert response.status_code == 200
                self.latencies.append(time.perf_counter() - started)
                self.stop.wait(0.1)


def probe(url: str, client: httpx.Client, name: str, send: Callable[[], list[int]]) -> dict[str, Any]:
    pinger = Pinger(url)
    pinger.start()
    time.sleep(0.3)
    started = time.perf_counter()
    statuses = send()
    ack = time.perf_counter() - started
    while client.get(f"{url}/healthz").json()["pending_jobs"]:
        time.sleep(0.05)
    idle = time.perf_counter() - started
    time.sleep(0.3)
    pinger.stop.set()
    pinger.join()
    pings = sorted(pinger.latencies)
    return {"probe": name, "answers": sorted(set(statuses)), "ack_ms": 1000 * ack,
            "ping_p50_ms": 1000 * pings[len(pings) // 2], "ping_max_ms": 1000 * pings[-1],
            "idle_after_s": idle}


def service_probes(url: str, heads: dict[str, list[str]]) -> list[dict[str, Any]]:
    client = httpx.Client(timeout=120)
    repos = dict(zip(PULLS, sorted(heads, key=lambda r: int(r.rsplit("-", 1)[1])), strict=True))

    def deliver(event: str, payload: dict[str, Any] | bytes) -> int:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return client.post(f"{url}/webhook", content=body, headers=signed_headers(event, body)).status_code

    def opened(name: str) -> Callable[[], list[int]]:
        repo = repos[name]
        return lambda: [deliver("pull_request", pull_request_payload("opened", repo, 1, *heads[repo]))]

    def commented(body: str, login: str) -> Callable[[], list[int]]:
        repo = repos["comment probes"]
        return lambda: [deliver("issue_comment", comment_payload(repo, 1, body, login=login,
                                                                 comment_id=random.randint(1, 1 << 30)))]

    def unsigned_events() -> list[int]:
        rng = random.Random(13)
        return [client.post(f"{url}/webhook", content=b"{}", headers={
            "X-GitHub-Event": "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 60)))}).status_code
            for _ in range(3000)]

    results = [probe(url, client, name, opened(name)) for name in list(PULLS)[:5]]
    results.append(probe(url, client, "diagnose + 65 KB of backticks, stranger",
                         commented("/vram-check diagnose\n" + "`" * 65_000, "stranger")))
    results.append(probe(url, client, "diagnose + 13,000 unclosed fences, writer",
                         commented("/vram-check diagnose\n" + "```a\n" * 13_000, "writer")))
    results.append(probe(url, client, "what-if gpus=72 nodes=1024 (the maxima)",
                         commented("/vram-check gpu=RTX-4090 gpus=72 nodes=1024", "writer")))
    size_before = len(client.get(f"{url}/metrics").content)
    results.append(probe(url, client, "3,000 unsigned random events", unsigned_events))
    results[-1]["metrics_bytes"] = f"{size_before} -> {len(client.get(f'{url}/metrics').content)}"
    results.append(probe(url, client, "signed JSON 200,000 deep",
                         lambda: [deliver("pull_request", b"[" * 200_000 + b"]" * 200_000)]))
    chain = (b"[" * 64 + b"]" * 64) * 39_000  # 5 MB, 64 deep everywhere: the depth check's worst case
    results.append(probe(url, client, "signed JSON 5 MB of 64-deep chains",
                         lambda: [deliver("pull_request", chain[: 5 * 1024 * 1024 - 1])]))
    return results


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bound_costs() -> list[tuple[str, float]]:
    from bot.slash import parse_command
    from estimator.errors import InputError
    from estimator.source import json_depth_ok, parse_yaml
    from rules.diagnose import diagnose_text

    def refused(text: str) -> None:
        try:
            parse_yaml(text, "x.yaml")
        except InputError:
            return
        raise AssertionError("not refused")

    five = 5 * 1024 * 1024
    return [
        ("json_depth_ok, 5 MB: 200,000 deep", timed(lambda: json_depth_ok(b"[" * 200_000 + b"]" * 200_000))),
        ("json_depth_ok, 5 MB: [] x 2.6 M", timed(lambda: json_depth_ok(b"[]" * (five // 2)))),
        ("json_depth_ok, 5 MB: 64-deep chains", timed(lambda: json_depth_ok((b"[" * 64 + b"]" * 64) * 40_960))),
        ('json_depth_ok, 5 MB: "a" x 1.3 M', timed(lambda: json_depth_ok(b'"a",' * (five // 4)))),
        ("parse_command, 65 KB of backticks", timed(lambda: parse_command("/vram-check diagnose\n" + "`" * 65_000))),
        ("parse_command, 13,000 unclosed fences",
         timed(lambda: parse_command("/vram-check diagnose\n" + "```a\n" * 13_000))),
        ("diagnose_text, 65 KB of 'a.' in OOM lines",
         timed(lambda: diagnose_text(("CUDA out of memory " + "a." * 990 + "\n") * 33), 1)),
        ("diagnose_text, 65 KB of digits in OOM lines",
         timed(lambda: diagnose_text(("CUDA out of memory. Tried to allocate " + "1" * 1950 + "\n") * 33), 1)),
        ("parse_yaml, alias bomb (600 B)", timed(lambda: refused(alias_bomb()))),
        ("parse_yaml, long-string alias (60 KB)", timed(lambda: refused(long_alias()))),
        ("parse_yaml, nested 500 deep", timed(lambda: refused(DEEP))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--github-latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"hostile-bench-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    port_file = work / "github.json"
    fake = multiprocessing.get_context("spawn").Process(
        target=serve_fake_github, args=(str(port_file), args.github_latency_ms / 1000), daemon=True)
    fake.start()
    while not port_file.exists():
        time.sleep(0.05)
    info = json.loads(port_file.read_text())
    port = free_port()
    env = {**os.environ, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": info["url"],
           "HF_ENDPOINT": "http://127.0.0.1:9", "VRAM_CHECK_GITHUB_RETRIES": "1",
           "PYTHONPATH": str(ROOT)}
    service = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                                "--log-level", "warning"], env=env, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        results = service_probes(url, info["heads"])
    finally:
        service.terminate()
        service.wait(timeout=60)
        fake.terminate()
    print(f"service probes (2 worker processes, fake GitHub latency {args.github_latency_ms:.0f} ms)")
    print(f"{'probe':44} {'answers':>12} {'ack ms':>8} {'ping p50':>9} {'ping max':>9} {'idle after s':>13}")
    for row in results:
        print(f"{row['probe']:44} {','.join(map(str, row['answers'])):>12} {row['ack_ms']:8.1f} "
              f"{row['ping_p50_ms']:9.1f} {row['ping_max_ms']:9.1f} {row['idle_after_s']:13.2f}"
              + (f"   /metrics {row['metrics_bytes']} bytes" if "metrics_bytes" in row else ""))
    print("\nbounds alone (best of 3 unless one run)")
    for name, seconds in bound_costs():
        print(f"{name:48} {1000 * seconds:9.1f} ms")


if __name__ == "__main__":
    main()
