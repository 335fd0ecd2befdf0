"""The GitHub App at GitHub's pace: what users get from `vram-check serve` with its production defaults.

One command runs three scenarios against a fake GitHub (tests/fakes/github.py, in its own process) that
answers every request after 50 ms and enforces GitHub's documented secondary limits (100 concurrent requests;
900 points per minute per endpoint, writes 5 points; 80 content-creating requests per minute, 500 per hour):
a request over one gets 403 with Retry-After and is counted as a violation.

1. burst: one replica, 20 pull requests opened at once (each in its own repository, touching one training
   config), plus 300 other deliveries from 16 senders (comments, pings, synchronize redeliveries) meanwhile.
2. lone: one pull request at a time, 10 times.
3. replicas: two replicas sharing a real redis-server, 40 pull requests opened at once (alternating between the
   replicas, as a load balancer would), one replica SIGKILLed (with its worker processes) mid-burst; the rest
   of the deliveries go to the survivor.

Printed: acknowledgement latency, webhook → first comment, GitHub requests per pull request, requests over a
secondary limit, sticky comments and conclusions per pull request, peak RSS per replica (service + workers).

    .venv/bin/python benchmarks/webhook_bench.py [--scenario all|burst|lone|replicas] [--github-latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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

from bot.render.markdown import MARKER  # noqa: E402
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
    """Child process: the fake GitHub, limits enforced, with `prs` repositories each with pull request #1."""
    from fakes.github import FakeGitHub, FakeGitHubState, SecondaryLimits

    state = FakeGitHubState(token=TOKEN)
    state.latency_s = latency_s
    state.limits = SecondaryLimits()
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
    """Peak VmRSS of a process and of it plus its descendants (the fork server and the workers)."""

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


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def signed(event: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
                  "X-Hub-Signature-256": sign(SECRET.encode(), body), "Content-Type": "application/json"}


class FakeGitHubProcess:
    def __init__(self, prs: int, latency_s: float) -> None:
        port_file = f"/tmp/vram-check-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}.json"
        self.process = multiprocessing.get_context("spawn").Process(
            target=serve_fake_github, args=(prs, port_file, latency_s), daemon=True)
        self.process.start()
        while not Path(port_file).exists() or not Path(port_file).read_text():
            time.sleep(0.05)
        time.sleep(0.1)
        info = json.loads(Path(port_file).read_text())
        Path(port_file).unlink()
        self.url: str = info["url"]
        self.heads: dict[str, tuple[str, str]] = {k: (v[0], v[1]) for k, v in info["heads"].items()}

    def get(self, what: str) -> Any:
        return httpx.get(f"{self.url}/_fake/{what}", timeout=30).json()

    def close(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


class Replica:
    """`vram-check serve` in its own session (so a SIGKILL of its group takes its workers along), configured
    only through the environment, with the production defaults."""

    def __init__(self, github_url: str, state_dir: Path, redis_url: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github_url,
               "HF_ENDPOINT": "http://127.0.0.1:9", "VRAM_CHECK_STATE_DIR": str(state_dir),
               "PYTHONPATH": str(ROOT)}
        if redis_url:
            env["VRAM_CHECK_REDIS_URL"] = redis_url
        env.update(json.loads(os.environ.get("BENCH_SERVICE_ENV", "{}")))  # experiments only; the default is none
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port",
                                         str(self.port), "--log-level", "warning"], env=env, cwd=ROOT,
                                        start_new_session=True)
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or self.process.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.1)
        self.sampler = MemorySampler(self.process.pid)
        self.sampler.start()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.sampler.stop.set()

    def close(self) -> None:
        self.sampler.stop.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def rss_mib(self) -> dict[str, float]:
        return {"service_process": round(self.sampler.peak_main / 1024, 1),
                "service_and_workers": round(self.sampler.peak_total / 1024, 1)}


def raw_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    host = url.removeprefix("http://")
    lines = ["POST /webhook HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def send_all(urls: list[str], deliveries: list[tuple[str, dict[str, Any]]], senders: int,
                   ack: list[float], sent_at: dict[str, float] | None = None) -> None:
    """Deliveries spread over the replicas' URLs round-robin, from `senders` concurrent connections. A
    deliberately light client (requests signed beforehand, raw HTTP/1.1 on keep-alive sockets), so that the
    load generator takes as little as possible of the two shared cores."""
    prepared = []
    for index, (event, payload) in enumerate(deliveries):
        url = urls[index % len(urls)]
        repo = payload["repository"]["full_name"] if event == "pull_request" else None
        prepared.append((url, repo, raw_request(url, *signed(event, payload))))
    queues: dict[str, asyncio.Queue[tuple[str | None, bytes]]] = {url: asyncio.Queue() for url in urls}
    for url, repo, request in prepared:
        queues[url].put_nowait((repo, request))

    async def sender(url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not queues[url].empty():
                repo, request = queues[url].get_nowait()
                if sent_at is not None and repo is not None:
                    sent_at.setdefault(repo, time.time())
                started = time.perf_counter()
                writer.write(request)
                status = await read_status(reader)
                ack.append(time.perf_counter() - started)
                assert status in (200, 202), status
        finally:
            writer.close()

    await asyncio.gather(*(sender(urls[i % len(urls)]) for i in range(max(senders, len(urls)))))


def first_comments(github: FakeGitHubProcess) -> dict[str, float]:
    first: dict[str, float] = {}
    for repo, _number, epoch in github.get("comment-times"):
        first[repo] = min(epoch, first.get(repo, epoch))
    return first


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def outcome_per_pr(github: FakeGitHubProcess) -> dict[str, Any]:
    stats = github.get("stats")
    sticky = {repo: sum(1 for line in lines if line == MARKER) for repo, lines in stats["sticky"].items()}
    concluded = {repo: any(s[0] == stats["heads"][repo] and s[1] in ("success", "failure")
                           for s in statuses) for repo, statuses in stats["statuses"].items()}
    return {"stats": stats, "sticky": sticky, "concluded": concluded}


def requests_summary(stats: dict[str, Any]) -> dict[str, Any]:
    per_repo = list(stats["requests_per_repo"].values())
    return {"requests_per_pr": {"mean": round(sum(per_repo) / len(per_repo), 2) if per_repo else None,
                                "max": max(per_repo) if per_repo else None},
            "requests_over_a_secondary_limit": len(stats["violations"]),
            "max_concurrent_requests": stats["max_in_flight"]}


def scenario_burst(args: argparse.Namespace, state_root: Path) -> dict[str, Any]:
    github = FakeGitHubProcess(args.prs, args.github_latency_ms / 1000)
    replica = Replica(github.url, state_root / "burst")
    try:
        repos = sorted(github.heads)
        opened = [("pull_request", pull_request_payload("opened", repo, 1, *github.heads[repo])) for repo in repos]
        noise: list[tuple[str, dict[str, Any]]] = []
        for index in range(args.burst):
            repo = repos[index % len(repos)]
            if index % 10 == 0:
                noise.append(("pull_request", pull_request_payload("synchronize", repo, 1, *github.heads[repo])))
            elif index % 10 == 1:
                noise.append(("ping", {"zen": "Keep it logically awesome.", "hook_id": index}))
            else:
                noise.append(("issue_comment", comment_payload(repo, 1, f"Looks good ({index})",
                                                               comment_id=10_000 + index)))
        ack: list[float] = []
        sent_at: dict[str, float] = {}
        asyncio.run(send_all([replica.url], opened, len(opened), ack, sent_at))
        asyncio.run(send_all([replica.url], noise, 16, ack))
        wait_until(lambda: len(first_comments(github)) >= len(repos), 120)
        wait_until(lambda: httpx.get(f"{replica.url}/healthz").json()["pending_jobs"] == 0, 120)
        first = first_comments(github)
        to_comment = [first[r] - sent_at[r] for r in repos if r in first]
        outcome = outcome_per_pr(github)
        metrics = httpx.get(f"{replica.url}/metrics").text
        server_ack = {line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                      for line in metrics.splitlines() if line.startswith("vram_check_ack_seconds_bucket")}
        return {
            "server_side_ack_histogram": server_ack,
            "prs": len(repos), "prs_commented": len(to_comment),
            "first_comment_s": {"p50": _r(percentile(to_comment, 50)), "p95": _r(percentile(to_comment, 95)),
                                "max": _r(max(to_comment) if to_comment else None)},
            "ack_ms": {"p50": _ms(percentile(ack, 50)), "p99": _ms(percentile(ack, 99)), "max": _ms(max(ack)),
                       "n": len(ack)},
            "sticky_comments_per_pr": sorted(set(outcome["sticky"].values())),
            "prs_with_a_conclusion": sum(outcome["concluded"].values()),
            **requests_summary(outcome["stats"]),
            "rss_mib": replica.rss_mib(),
        }
    finally:
        replica.close()
        github.close()


def scenario_lone(args: argparse.Namespace, state_root: Path) -> dict[str, Any]:
    github = FakeGitHubProcess(args.lone, args.github_latency_ms / 1000)
    replica = Replica(github.url, state_root / "lone")
    try:
        times: list[float] = []
        ack: list[float] = []
        for repo in sorted(github.heads):
            sent: dict[str, float] = {}
            asyncio.run(send_all([replica.url], [("pull_request", pull_request_payload(
                "opened", repo, 1, *github.heads[repo]))], 1, ack, sent))
            wait_until(lambda repo=repo: repo in first_comments(github), 60)
            wait_until(lambda: httpx.get(f"{replica.url}/healthz").json()["pending_jobs"] == 0, 60)
            first = first_comments(github)
            if repo in first:
                times.append(first[repo] - sent[repo])
        stats = github.get("stats")
        first_repo = sorted(github.heads)[0]
        one_pr = [f"{m} {p}" for m, p in stats["requests"] if p.startswith(f"/repos/{first_repo}/")]
        return {"prs": len(github.heads), "prs_commented": len(times), "requests_of_one_pr": one_pr,
                "first_comment_s": {"p50": _r(percentile(times, 50)), "p95": _r(percentile(times, 95)),
                                    "max": _r(max(times) if times else None)},
                "ack_ms": {"p50": _ms(percentile(ack, 50)), "max": _ms(max(ack))},
                **requests_summary(stats), "rss_mib": replica.rss_mib()}
    finally:
        replica.close()
        github.close()


def scenario_replicas(args: argparse.Namespace, state_root: Path) -> dict[str, Any]:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        return {"skipped": "redis-server is not installed (apt-get install redis-server)"}
    port = free_port()
    redis = subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    redis_url = f"redis://127.0.0.1:{port}/0"
    github = FakeGitHubProcess(args.replica_prs, args.github_latency_ms / 1000)
    replicas = [Replica(github.url, state_root / f"replica-{i}", redis_url) for i in range(2)]
    try:
        repos = sorted(github.heads)
        opened = [("pull_request", pull_request_payload("opened", repo, 1, *github.heads[repo])) for repo in repos]
        half = len(opened) // 2
        ack: list[float] = []
        started = time.time()
        asyncio.run(send_all([r.url for r in replicas], opened[:half], half, ack))
        rss_killed = replicas[0].rss_mib()
        replicas[0].kill()  # mid-burst: half the deliveries accepted, most of their jobs queued or running
        killed_at = time.time() - started
        asyncio.run(send_all([replicas[1].url], opened[half:], len(opened) - half, ack))

        def settled() -> bool:
            outcome = outcome_per_pr(github)
            return all(outcome["sticky"].get(r) == 1 and outcome["concluded"].get(r) for r in repos)

        done = wait_until(settled, args.replica_timeout)
        all_done_s = time.time() - started
        outcome = outcome_per_pr(github)
        return {
            "prs": len(repos), "replicas": 2, "killed_replica_after_s": round(killed_at, 2),
            "all_settled": done, "all_settled_after_s": round(all_done_s, 1),
            "prs_with_exactly_one_sticky": sum(1 for r in repos if outcome["sticky"].get(r) == 1),
            "prs_with_more_than_one_sticky": sum(1 for r in repos if outcome["sticky"].get(r, 0) > 1),
            "prs_without_sticky": sum(1 for r in repos if outcome["sticky"].get(r, 0) == 0),
            "prs_with_a_conclusion_on_their_head": sum(1 for r in repos if outcome["concluded"].get(r)),
            "ack_ms": {"p50": _ms(percentile(ack, 50)), "p99": _ms(percentile(ack, 99))},
            **requests_summary(outcome["stats"]),
            "rss_mib": {"killed_replica_before_kill": rss_killed, "survivor": replicas[1].rss_mib()},
        }
    finally:
        for replica in replicas:
            replica.close()
        github.close()
        redis.terminate()
        redis.wait(timeout=10)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(1000 * value, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("all", "burst", "lone", "replicas"), default="all")
    parser.add_argument("--prs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--lone", type=int, default=10)
    parser.add_argument("--replica-prs", type=int, default=40)
    parser.add_argument("--replica-timeout", type=float, default=240.0)
    parser.add_argument("--github-latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    state_root = Path(tempfile.mkdtemp(prefix="vram-check-bench-"))
    results: dict[str, Any] = {"settings": {"github_latency_ms": args.github_latency_ms,
                                            "service": "production defaults (only secrets, URLs, state dir set)",
                                            "cpus": os.cpu_count(),
                                            "load_average_at_start": os.getloadavg()}}
    try:
        for name, run in (("burst", scenario_burst), ("lone", scenario_lone), ("replicas", scenario_replicas)):
            if args.scenario in ("all", name):
                results[name] = run(args, state_root)
                print(json.dumps({name: results[name]}, indent=2), flush=True)
    finally:
        shutil.rmtree(state_root, ignore_errors=True)
    results["settings"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results["settings"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
