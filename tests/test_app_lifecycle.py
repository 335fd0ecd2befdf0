"""Issue 13's job-lifecycle rows, against `vram-check serve` as a real process (signals, worker processes,
restarts) or the real app on loopback, with the fake GitHub: a killed worker, a job past its time limit, a
redelivery of a failed delivery, SIGKILL and SIGTERM with jobs in flight, GitHub's Retry-After past the cap.
Every probe also checks that a signed ping is answered within a second meanwhile.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.github import FakeGitHub, FakeGitHubState
from fakes.serve_process import ServeProcess, cpu_seconds
from fakes.service import RunningService, pull_request_payload
from test_app_pull_request import POLICY, lora

from bot.render.markdown import MARKER
from bot.settings import Settings

SECRET = "lifecycle-secret"
TOKEN = "ghp_lifecycle_token"


def config(cutoff: int) -> str:
    """A LoRA config that fits (Qwen2.5-0.5B from the bundled catalog), distinct per cutoff."""
    return lora().replace("cutoff_len: 512", f"cutoff_len: {cutoff}")


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(FakeGitHubState(token=TOKEN)) as fake:
        yield fake


_numbers = iter(range(1, 10_000))


def open_pull(github: FakeGitHub, changes: dict[str, str | None]) -> tuple[str, int, str, str]:
    number = next(_numbers)
    repo = f"acme/lifecycle-{number}"
    github.state.add_repo(repo, base_files={".github/vram-check.yml": POLICY})
    head = github.state.open_pull(repo, number, head_files=changes)
    return repo, number, head, github.state.repos[repo].pulls[number].base_sha


def many_configs(count: int) -> dict[str, str | None]:
    """A pull request whose estimate takes seconds of CPU: `count` configs, each estimated on its own."""
    return {f"configs/c{i:03d}.yaml": config(512 + 16 * i) for i in range(count)}


def summaries(github: FakeGitHub, repo: str, number: int) -> list[str]:
    return [c.body for c in github.state.comments(repo, number) if c.body.split("\n", 1)[0] == MARKER]


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class PingProbe(threading.Thread):
    """Sends a signed ping every 0.2 s while a probe runs; records the slowest answer."""

    def __init__(self, service: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.slowest = 0.0
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            try:
                self.slowest = max(self.slowest, self.service.ping_seconds())
            except Exception:
                self.failures += 1

    def __enter__(self) -> PingProbe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(timeout=10)
        assert self.failures == 0 and self.slowest < 1.0, (self.failures, self.slowest)


def serve(github: FakeGitHub, tmp_path: Path, **env: str) -> ServeProcess:
    return ServeProcess({"GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": github.url,
                         "HF_ENDPOINT": "http://127.0.0.1:9", "VRAM_CHECK_STATE_DIR": str(tmp_path / "state"),
                         **env}, tmp_path / "serve.log")


def test_a_killed_worker_ends_its_job_clearly_and_the_pool_is_rebuilt(github: FakeGitHub, tmp_path: Path) -> None:
    service = serve(github, tmp_path, VRAM_CHECK_WORKERS="2").start()
    try:
        with PingProbe(service):
            # 1. an idle worker SIGKILLed (the OOM killer): the next job still runs
            for pid in service.worker_pids():
                os.kill(pid, signal.SIGKILL)
            repo, number, head, base = open_pull(github, {"configs/sft.yaml": config(512)})
            assert service.deliver("pull_request", pull_request_payload("opened", repo, number, head,
                                                                        base)).status_code == 202
            wait_for(lambda: github.state.repos[repo].statuses, 60, "the check after the idle kill")
            assert github.state.repos[repo].statuses[-1]["state"] == "success"
            # 2. the workers SIGKILLed while they estimate: that job ends saying so, the next one runs
            slow, number2, head2, base2 = open_pull(github, many_configs(120))
            service.deliver("pull_request", pull_request_payload("opened", slow, number2, head2, base2))
            pids = service.worker_pids()
            before = {pid: cpu_seconds(pid) for pid in pids}
            wait_for(lambda: any(cpu_seconds(p) - before[p] > 0.5 for p in pids), 60, "the estimate to run")
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: github.state.repos[slow].statuses, 60, "the killed job's status")
            status = github.state.repos[slow].statuses[-1]
            assert status["state"] == "failure"
            assert status["description"].startswith("could not be checked: the worker process died")
            [body] = summaries(github, slow, number2)
            assert "could not be checked: the worker process died (killed by signal 9)" in body
            wait_for(lambda: service.health().status_code == 200, 30, "healthz 200 again")
            after, number3, head3, base3 = open_pull(github, {"configs/sft.yaml": config(1024)})
            service.deliver("pull_request", pull_request_payload("opened", after, number3, head3, base3))
            wait_for(lambda: github.state.repos[after].statuses, 60, "the check after the kill")
            assert github.state.repos[after].statuses[-1]["state"] == "success"
    finally:
        service.close()


def test_a_job_past_its_time_limit_ends_and_shutdown_does_not_wait_for_it(github: FakeGitHub,
                                                                          tmp_path: Path) -> None:
    service = serve(github, tmp_path, VRAM_CHECK_JOB_TIMEOUT_S="2", VRAM_CHECK_DRAIN_S="1").start()
    try:
        with PingProbe(service):
            repo, number, head, base = open_pull(github, many_configs(250))
            started = time.monotonic()
            service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
            wait_for(lambda: github.state.repos[repo].statuses, 60, "the timed-out job's status")
            assert time.monotonic() - started < 30
            status = github.state.repos[repo].statuses[-1]
            assert status["state"] == "error"
            assert status["description"] == "could not be checked: the check took longer than the 2 s time limit"
            [body] = summaries(github, repo, number)
            assert "could not be checked: the check took longer than the 2 s time limit" in body
        # a job that never ends does not hold the shutdown: another one runs, SIGTERM, exit within the drain
        repo2, number2, head2, base2 = open_pull(github, many_configs(250))
        service.deliver("pull_request", pull_request_payload("opened", repo2, number2, head2, base2))
        wait_for(lambda: service.running_jobs() >= 1, 30, "the job to start")
        stopped = time.monotonic()
        service.signal_group(signal.SIGTERM)
        assert service.wait_exit(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
        assert time.monotonic() - stopped < 15
        assert not github.state.repos[repo2].statuses  # interrupted by the shutdown, not failed: kept
    finally:
        service.close()


def test_a_redelivered_failed_delivery_runs_again(github: FakeGitHub, tmp_path: Path) -> None:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url, github_retries=0,
                        worker_mode="thread", workers=1)
    with RunningService(settings) as service:
        repo, number, head, base = open_pull(github, {"configs/sft.yaml": config(512)})
        github.state.fail("GET", rf"/repos/{repo}/pulls/{number}(/files)?$", 502, times=1)
        payload = pull_request_payload("opened", repo, number, head, base)
        assert service.deliver("pull_request", payload, delivery_id="d-failed").json() == {"outcome": "queued"}
        service.wait_idle()
        assert github.state.repos[repo].statuses[-1]["state"] == "failure"  # could not be checked
        # GitHub's "Redeliver": the same delivery id again; it failed, so it runs again
        assert service.deliver("pull_request", payload, delivery_id="d-failed").json() == {"outcome": "queued"}
        service.wait_idle()
        [body] = summaries(github, repo, number)
        assert "✅ fits" in body and github.state.repos[repo].statuses[-1]["state"] == "success"
        # a delivery that was done is a duplicate
        assert service.deliver("pull_request", payload, delivery_id="d-failed").json() == {"outcome": "duplicate"}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_accepted_deliveries_survive_sigkill_and_sigterm(github: FakeGitHub, tmp_path: Path, signum: int) -> None:
    github.state.latency_s = 0.4  # slow GitHub: jobs are queued and in flight when the signal comes
    service = serve(github, tmp_path, VRAM_CHECK_DRAIN_S="0.5", VRAM_CHECK_IO_THREADS="2").start()
    pulls = [open_pull(github, {"configs/sft.yaml": config(512 + 64 * i)}) for i in range(5)]
    try:
        with PingProbe(service):
            for repo, number, head, base in pulls:
                response = service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
                assert response.status_code == 202
            wait_for(lambda: service.running_jobs() >= 1, 30, "jobs to start")
        service.signal_group(signum)
        service.wait_exit(timeout=30)
        unfinished = [p for p in pulls if not github.state.repos[p[0]].statuses]
        assert unfinished, "the signal came too late to test anything"
        github.state.latency_s = 0.05
        service.start()  # the same state folder
        with PingProbe(service):
            wait_for(lambda: all(github.state.repos[p[0]].statuses for p in pulls), 90, "every job to finish")
        for repo, number, head, _ in pulls:
            [body] = summaries(github, repo, number)  # one sticky comment, even for a job that ran twice
            assert "✅ fits" in body
            assert github.state.repos[repo].statuses[-1] == {**github.state.repos[repo].statuses[-1],
                                                             "sha": head, "state": "success"}
    finally:
        service.close()


def test_retry_after_past_the_cap_ends_the_job_at_once(github: FakeGitHub) -> None:
    # The probe: GitHub answers 403 with Retry-After: 45; the cap is 30 s (the default).
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url, github_retries=1,
                        worker_mode="thread", workers=1)
    with RunningService(settings) as service:
        repo, number, head, base = open_pull(github, {"configs/sft.yaml": config(512)})
        github.state.fail("GET", rf"/repos/{repo}/pulls/{number}(/files)?$", 403, times=1,
                          headers={"Retry-After": "45"})
        started = time.monotonic()
        service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
        slowest_ping = 0.0
        while service.metric("vram_check_jobs_total", kind="check", outcome="rate-limited") < 1:
            ping_started = time.perf_counter()
            assert service.deliver("ping", {"zen": "x", "hook_id": 1}).status_code == 200
            slowest_ping = max(slowest_ping, time.perf_counter() - ping_started)
            assert time.monotonic() - started < 5, "the job waited for GitHub past the cap"
            time.sleep(0.05)
        assert slowest_ping < 1.0
        assert not github.state.repos[repo].statuses  # GitHub said wait: nothing is sent before that


def test_retry_after_within_the_cap_is_obeyed_and_past_it_the_status_says_why(github: FakeGitHub,
                                                                              tmp_path: Path) -> None:
    settings = Settings(webhook_secret=SECRET, token=TOKEN, api_url=github.url, github_retries=1,
                        worker_mode="thread", workers=1, state_dir=tmp_path / "state", github_max_wait_s=3)
    with RunningService(settings) as service:
        # within the cap: waited for, then the check completes
        repo, number, head, base = open_pull(github, {"configs/sft.yaml": config(512)})
        github.state.fail("GET", rf"/repos/{repo}/pulls/{number}/files$", 403, times=1,
                          headers={"Retry-After": "1"})
        service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
        service.wait_idle()
        assert "✅ fits" in summaries(github, repo, number)[0]
        # past the cap: the job ends at once; once the wait GitHub asked for is over, the status and the
        # comment say why
        repo2, number2, head2, base2 = open_pull(github, {"configs/sft.yaml": config(512)})
        github.state.fail("GET", rf"/repos/{repo2}/pulls/{number2}/files$", 403, times=1,
                          headers={"Retry-After": "6"})
        started = time.monotonic()
        service.deliver("pull_request", pull_request_payload("opened", repo2, number2, head2, base2))
        service.wait_for(lambda: service.metric("vram_check_jobs_total", kind="check", outcome="rate-limited") >= 1,
                         timeout=3)
        assert not github.state.repos[repo2].statuses
        service.wait_for(lambda: bool(github.state.repos[repo2].statuses), timeout=30)
        assert time.monotonic() - started >= 6
        status = github.state.repos[repo2].statuses[-1]
        assert status["state"] == "failure"
        assert "GitHub asked to wait 6 s, more than the 3 s cap" in status["description"]
        [body] = summaries(github, repo2, number2)
        assert "could not be checked: GitHub rate limit: GitHub asked to wait 6 s" in body
