"""Webhook service benchmark: ack latency under a burst while pull requests are processed, the time from
webhook to sticky comment, and resident memory.

Setup (all on loopback): the fake GitHub REST server (tests/fakes/github.py) in its own process with N
repositories, each with a pull request that changes a LLaMA-Factory training config of a bundled-catalog
model; the real service as `python -m bot.cli serve` in a subprocess, configured from the environment.
Then: N `pull_request.opened` deliveries (the PRs to process) followed at once by a burst of B deliveries
from S concurrent senders (ignored comments, pings and `synchronize` redeliveries that re-queue checks).
Measured: client-side ack latency of the burst (p50/p99), webhook → comment time per PR (p50/p95, from
the fake's record of when each comment was created), and the peak resident memory of the service process
and its workers (VmRSS from /proc).

    nice .venv/bin/python benchmarks/webhook_bench.py [--prs 20] [--burst 300] [--senders 16]
                                [--worker-mode process|thread] [--workers 2] [--github-latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fakes.service import comment_payload, pull_request_payload  # noqa: E402

from bot.webhooks.signature import sign  # noqa: E402

SECRET = "bench-secret"
TOKEN = "ghp_bench_token"
CONFIG = """\
### model
model_name_or_path: meta-llama/Llama-3.1-8B
### method
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
### dataset
cutoff_len: {cutoff}
### train
per_device_train_batch_size: {batch}
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
bf16: true
"""
POLICY = """\
paths: ["configs/**/*.yaml"]
pools:
  - {name: a100, gpu: A100-80GB, per_node: 8}
  - {name: dev, gpu: RTX-4090, per_node: 2}
default_pool: a100
"""


def serve_fake_github(prs: int, port_file: str, latency_s: float) -> None:
    """Child process: the fake GitHub with `prs` repositories and pull requests."""
    from fakes.github import FakeGitHub, FakeGitHubState

    state = FakeGitHubState(token=TOKEN)
    state.latency_s = latency_s
    for index in range(prs):
        repo = f"bench/configs-{index}"
        state.add_repo(repo, base_files={".github/vram-check.yml": POLICY,
                                         "configs/sft.yaml": CONFIG.format(cutoff=1024, batch=1)})
        state.open_pull(repo, 1, head_files={"configs/sft.yaml": CONFIG.format(cutoff=4096, batch=4)})
    with FakeGitHub(state) as fake:
        Path(port_file).write_text(json.dumps({"url": fake.url, "heads": {
            repo.full_name: (repo.pulls[1].head_sha, repo.pulls[1].base_sha) for repo in state.repos.values()}}))
        threading.Event().wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(entry.name)
            out += [child, *descendants(child)]
    return out


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_main = 0
        self.peak_total = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            main = rss_kib(self.pid)
            total = main + sum(rss_kib(child) for child in descendants(self.pid))
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, total)
            time.sleep(0.1)


def signed(event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
                  "X-Hub-Signature-256": sign(SECRET.encode(), body), "Content-Type": "application/json"}


def raw_request(service_url: str, body: bytes, headers: dict[str, str]) -> bytes:
    host = service_url.removeprefix("http://")
    lines = ["POST /webhook HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_bench(args: argparse.Namespace, service_url: str, heads: dict[str, tuple[str, str]],
                    github_url: str) -> dict[str, Any]:
    repos = sorted(heads)
    opened = [("pull_request", pull_request_payload("opened", repo, 1, *heads[repo])) for repo in repos]
    burst: list[tuple[str, dict[str, Any]]] = []
    for index in range(args.burst):
        repo = repos[index % len(repos)]
        kind = index % 10
        if kind == 0:
            burst.append(("pull_request", pull_request_payload("synchronize", repo, 1, *heads[repo])))
        elif kind == 1:
            burst.append(("ping", {"zen": "Keep it logically awesome.", "hook_id": index}))
        else:
            burst.append(("issue_comment", comment_payload(repo, 1, f"Looks good to me ({index})",
                                                           comment_id=10_000 + index)))
    prepared_opened = [signed(event, payload) for event, payload in opened]
    prepared_burst = [raw_request(service_url, *signed(event, payload)) for event, payload in burst]
    ack: list[float] = []
    sent_at: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for (body, headers), repo in zip(prepared_opened, repos, strict=True):
            sent_at[repo] = time.time()
            response = await client.post(f"{service_url}/webhook", content=body, headers=headers)
            assert response.status_code == 202, response.text
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for item in prepared_burst:
            queue.put_nowait(item)
        host, port = service_url.removeprefix("http://").split(":")

        async def sender() -> None:
            # A deliberately light client (pre-built requests on one keep-alive connection per sender), so
            # the load generator takes as little of the 2 shared cores as possible.
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while not queue.empty():
                    request = queue.get_nowait()
                    started = time.perf_counter()
                    writer.write(request)
                    status = await read_response(reader)
                    ack.append(time.perf_counter() - started)
                    assert status in (200, 202), status
            finally:
                writer.close()

        burst_started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.senders)))
        burst_seconds = time.perf_counter() - burst_started
        deadline = time.time() + 120
        first_comment: dict[str, float] = {}
        while time.time() < deadline and len(first_comment) < len(repos):
            times = (await client.get(f"{github_url}/_fake/comment-times")).json()
            for repo, _number, epoch in times:
                first_comment[repo] = min(epoch, first_comment.get(repo, epoch))
            await asyncio.sleep(0.05)
        while (await client.get(f"{service_url}/healthz")).json()["pending_jobs"] and time.time() < deadline:
            await asyncio.sleep(0.05)
        comments_total = len((await client.get(f"{github_url}/_fake/comment-times")).json())
    to_comment = [first_comment[repo] - sent_at[repo] for repo in repos if repo in first_comment]
    return {
        "ack_ms": {"p50": 1000 * percentile(ack, 50), "p99": 1000 * percentile(ack, 99),
                   "max": 1000 * max(ack), "n": len(ack)},
        "burst_seconds": burst_seconds,
        "webhook_to_comment_s": {"p50": percentile(to_comment, 50) if to_comment else None,
                                 "p95": percentile(to_comment, 95) if to_comment else None,
                                 "max": max(to_comment) if to_comment else None,
                                 "commented_prs": len(to_comment), "prs": len(repos)},
        "comments_total": comments_total,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--worker-mode", choices=("process", "thread"), default="process")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--github-latency-ms", type=float, default=50.0,
                        help="added to every fake GitHub answer, so checks overlap the burst as on github.com")
    args = parser.parse_args()

    port_file = f"/tmp/vram-check-bench-{os.getpid()}.json"
    context = multiprocessing.get_context("spawn")
    fake = context.Process(target=serve_fake_github, args=(args.prs, port_file, args.github_latency_ms / 1000),
                           daemon=True)
    fake.start()
    while not Path(port_file).exists() or not Path(port_file).read_text():
        time.sleep(0.05)
    time.sleep(0.1)
    info = json.loads(Path(port_file).read_text())
    Path(port_file).unlink()
    port = free_port()
    env = {**os.environ, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": info["url"],
           "HF_ENDPOINT": "http://127.0.0.1:9", "VRAM_CHECK_WORKER_MODE": args.worker_mode,
           "VRAM_CHECK_WORKERS": str(args.workers), "VRAM_CHECK_GITHUB_RETRIES": "1",
           "VRAM_CHECK_GITHUB_THROTTLE": "0", "PYTHONPATH": str(ROOT)}
    service = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(port), "--log-level", "warning"], env=env, cwd=ROOT)
    service_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{service_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or service.poll() is not None:
                raise SystemExit("service did not start")
            time.sleep(0.1)
        sampler = MemorySampler(service.pid)
        sampler.start()
        idle_rss = rss_kib(service.pid) + sum(rss_kib(c) for c in descendants(service.pid))
        result = asyncio.run(run_bench(args, service_url, {k: tuple(v) for k, v in info["heads"].items()},
                                       info["url"]))
        sampler.stop.set()
        sampler.join()
        server_metrics = httpx.get(f"{service_url}/metrics").text
        result["rss_mib"] = {"idle_total": idle_rss / 1024, "peak_service_process": sampler.peak_main / 1024,
                             "peak_service_and_workers": sampler.peak_total / 1024}
        result["config"] = {"prs": args.prs, "burst": args.burst, "senders": args.senders,
                            "github_latency_ms": args.github_latency_ms,
                            "worker_mode": args.worker_mode, "workers": args.workers, "cpus": os.cpu_count()}
        result["server_jobs"] = [line for line in server_metrics.splitlines()
                                 if line.startswith(("vram_check_jobs_total", "vram_check_jobs_superseded_total"))]
        result["server_ack_histogram"] = [line.split("vram_check_ack_seconds_bucket")[1]
                                          for line in server_metrics.splitlines()
                                          if line.startswith("vram_check_ack_seconds_bucket")]
        print(json.dumps(result, indent=2))
    finally:
        service.terminate()
        service.wait(timeout=30)
        fake.terminate()
        fake.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
