"""Offline, air-gapped and first-hour use (issue 15), through the CLI as a user runs it: real processes, real
files, a Hub that cannot be reached (a closed port on 127.0.0.1: connection refused), one that accepts
connections and never answers, and the fake Hub on loopback (tests/fakes/hub.py) for `models pull`.

Expected parameter counts come from tests/fixtures/param_counts.json (transformers on the meta device).
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fakes.hub import FakeHub, FakeHubState

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "estimator" / "catalog"
ORACLE = json.loads((ROOT / "tests" / "fixtures" / "param_counts.json").read_text())
LLAMA_1B = json.loads((CATALOG / "meta-llama__Llama-3.2-1B.json").read_text())
LLAMA_1B_PARAMS = ORACLE["meta-llama__Llama-3.2-1B.json"]["total"]
POLICY_ONE_GPU = "pools:\n  - {name: dev, gpu: A100-80GB, per_node: 1}\n"


def config(model: str, extra: str = "") -> str:
    return (f"model_name_or_path: {model}\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
            f"per_device_train_batch_size: 1\ncutoff_len: 512\nbf16: true\n{extra}")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(cwd), "HF_HOME": str(cwd / ".hf"),
            "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**base, **(env or {})}, **kwargs)  # type: ignore[call-overload]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


class SilentListener:
    """A TCP server on loopback that accepts connections and never answers (a black-holed Hub), counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> SilentListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture()
def offline_repo(tmp_path: Path) -> Path:
    """20 configs on models neither bundled nor cached (4 ids, each used 5 times) and 3 on bundled models."""
    files = {".github/vram-check.yml": POLICY_ONE_GPU}
    for index in range(20):
        files[f"configs/unbundled_{index:02d}.yaml"] = config(f"team/unbundled-{index % 4}")
    for index, model in enumerate(("Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B", "Qwen/Qwen3-4B-Instruct-2507")):
        files[f"configs/bundled_{index}.yaml"] = config(model)
    return write(tmp_path / "repo", files)


def test_check_without_network_gives_one_line_per_unresolvable_config_and_verdicts_for_the_rest(
        offline_repo: Path) -> None:
    out = cli("check", cwd=offline_repo)
    assert out.returncode == 1  # configs that could not be checked fail the run
    assert out.stderr == ""  # no huggingface_hub retry warnings, no progress line (stderr is not a terminal)
    lines = out.stdout.splitlines()
    errors = [line for line in lines if ": ERROR — " in line]
    assert len(errors) == 20
    assert all("is not bundled or in the local Hub cache, and the Hub cannot be reached (ConnectError" in line
               and "vram-check models pull" in line for line in errors)
    for index in range(3):
        assert any(line.startswith(f"configs/bundled_{index}.yaml: FIT") for line in lines)
    assert lines[-1] == "overall: ERROR (23 configs; 20 error)"


def test_a_hub_that_never_answers_is_waited_for_once_per_run(offline_repo: Path) -> None:
    with SilentListener() as hub:
        out = cli("check", "--format", "json", cwd=offline_repo,
                  env={"HF_ENDPOINT": f"http://127.0.0.1:{hub.port}", "HF_HUB_ETAG_TIMEOUT": "1"})
        report = json.loads(out.stdout)
        assert len(hub.accepted) == 1  # one probe timed out; the other 19 lookups did not ask again
    errors = [c["error"] for c in report["configs"].values() if c["error"]]
    assert len(errors) == 20 and all("the Hub cannot be reached (ReadTimeout" in e for e in errors)
    assert out.stderr == ""


def test_hf_hub_offline_asks_nothing_and_says_so(offline_repo: Path) -> None:
    with SilentListener() as hub:
        out = cli("check", "--format", "json", cwd=offline_repo,
                  env={"HF_ENDPOINT": f"http://127.0.0.1:{hub.port}", "HF_HUB_OFFLINE": "1"})
        assert hub.accepted == []
    configs = json.loads(out.stdout)["configs"]
    assert "HF_HUB_OFFLINE is set" in configs["configs/unbundled_00.yaml"]["error"]
    assert configs["configs/bundled_1.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS


def test_estimate_on_an_unbundled_model_fails_with_one_line(tmp_path: Path) -> None:
    write(tmp_path, {"sft.yaml": config("team/not-bundled")})
    out = cli("estimate", "sft.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "sft.yaml:1: model 'team/not-bundled' is not bundled" in out.stderr


def test_check_model_option_answers_ids_from_local_files(offline_repo: Path, tmp_path: Path) -> None:
    local = write(tmp_path / "local-models", {"a/config.json": json.dumps(LLAMA_1B), "b.json": json.dumps(LLAMA_1B)})
    args = ["check", "--format", "json", "--model", f"team/unbundled-0={local / 'a'}",
            "--model", f"team/unbundled-1={local / 'b.json'}", "--model", f"TEAM/Unbundled-2={local / 'a'}",
            "--model", f"team/unbundled-3={local / 'a' / 'config.json'}"]
    out = cli(*args, cwd=offline_repo)
    configs = json.loads(out.stdout)["configs"]
    assert all(c["error"] is None for c in configs.values()), [c["error"] for c in configs.values()]
    model = configs["configs/unbundled_00.yaml"]["model"]
    assert (model["id"], model["parameters"]["total"]) == ("team/unbundled-0", LLAMA_1B_PARAMS)
    assert model["source"] == f"{local / 'a'} (--model)"
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("value", "message"), [
    ("just/a-path", "--model takes ID=PATH"),
    ("team/x=missing/config.json", "'missing/config.json' not found"),
    ("=config.json", "--model takes ID=PATH"),
])
def test_check_model_option_refuses_bad_values(offline_repo: Path, value: str, message: str) -> None:
    out = cli("check", "--model", value, cwd=offline_repo)
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1


def test_policy_models_map_answers_ids_from_the_repository(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {
        ".github/vram-check.yml": POLICY_ONE_GPU + (
            "models:\n"
            "  team/private-1b: models/private-1b\n"
            "  team/other: models/other/config.json\n"
            "  team/missing: models/missing\n"),
        "models/private-1b/config.json": json.dumps(LLAMA_1B),
        "models/other/config.json": json.dumps(LLAMA_1B),
        "configs/a.yaml": config("team/private-1b"),
        "configs/b.yaml": config("Team/Other"),
        "configs/c.yaml": config("team/missing"),
        "configs/d.yaml": config("Qwen/Qwen2.5-0.5B"),
        "configs/e.yaml": config("/data/models/private-1b/"),  # a path on the training machines
    })
    policy = repo / ".github" / "vram-check.yml"
    policy.write_text(policy.read_text() + "  /data/models/private-1b: models/private-1b/config.json\n")
    out = cli("check", "--format", "json", cwd=repo)
    configs = json.loads(out.stdout)["configs"]
    assert configs["configs/a.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS
    assert configs["configs/a.yaml"]["model"]["source"] == "models/private-1b/config.json (the policy's models:)"
    assert configs["configs/b.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS
    assert configs["configs/c.yaml"]["error"] == (".github/vram-check.yml:6: models: 'team/missing': "
                                                  "'models/missing/config.json' not found in the repository at the "
                                                  "policy's version")
    assert configs["configs/d.yaml"]["error"] is None
    assert configs["configs/e.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside/config.json", "~/config.json"])
def test_policy_models_paths_stay_in_the_repository(tmp_path: Path, path: str) -> None:
    repo = write(tmp_path / "repo", {".github/vram-check.yml": POLICY_ONE_GPU + f"models:\n  team/x: {path}\n",
                                     "configs/a.yaml": config("team/x")})
    out = cli("check", cwd=repo)
    assert out.returncode == 2
    assert ".github/vram-check.yml:4: models: 'team/x':" in out.stderr
    assert "outside the repository" in out.stderr or "leaves the repository" in out.stderr


def test_models_pull_fills_the_cache_that_offline_runs_use(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {
        ".github/vram-check.yml": POLICY_ONE_GPU,
        "configs/a.yaml": config("team/llama-1b-copy"),
        "configs/b.yaml": config("team/llama-1b-copy", "learning_rate: 1.0e-4\n"),
        "configs/c.yaml": config("Qwen/Qwen2.5-0.5B"),  # bundled: nothing to fetch
        "configs/d.yaml": config("team/not-on-the-hub"),
    })
    hf_home = str(tmp_path / "hf")
    state = FakeHubState()
    state.add_model("team/llama-1b-copy", LLAMA_1B)
    with FakeHub(state) as hub:
        pulled = cli("models", "pull", cwd=repo, env={"HF_ENDPOINT": hub.url, "HF_HOME": hf_home})
    assert pulled.returncode == 1  # one id could not be fetched
    assert pulled.stdout.splitlines()[0] == ("vram-check models pull: 2 model ids to fetch from 4 configs "
                                             "(1 bundled, 0 in the policy's models: map, 0 local paths need no fetch)")
    assert "team/llama-1b-copy: fetched" in pulled.stdout
    assert "team/not-on-the-hub: FAILED, model 'team/not-on-the-hub' not found on the Hub" in pulled.stdout

    offline = cli("check", "--format", "json", cwd=repo, env={"HF_HOME": hf_home, "HF_HUB_OFFLINE": "1"})
    configs = json.loads(offline.stdout)["configs"]
    assert configs["configs/a.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS
    assert configs["configs/b.yaml"]["error"] is None
    unreachable = cli("check", "--format", "json", cwd=repo, env={"HF_HOME": hf_home})  # closed port, not offline
    assert json.loads(unreachable.stdout)["configs"]["configs/a.yaml"]["error"] is None


def test_progress_line_on_a_terminal_only(offline_repo: Path) -> None:
    master, slave = pty.openpty()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(offline_repo),
           "HF_HOME": str(offline_repo / ".hf"), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "check"], cwd=offline_repo, env=env,
                               stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    process.communicate(timeout=120)
    os.close(master)
    assert b"\rvram-check: checked 1/23 configs" in seen and b"checked 23/23 configs" in seen
    piped = cli("check", cwd=offline_repo, env={"HF_HUB_OFFLINE": "1"})
    assert "checked" not in piped.stderr


def test_estimate_with_gpu_reports_exactly_that_target(tmp_path: Path) -> None:
    write(tmp_path, {"sft.yaml": config("Qwen/Qwen2.5-0.5B")})
    out = cli("estimate", "sft.yaml", "--gpu", "H100", "--gpus", "2", "--format", "json", cwd=tmp_path)
    verdicts = json.loads(out.stdout)["verdicts"]
    assert [(v["gpu"], v["gpus"]) for v in verdicts] == [("H100-SXM", 2)]
    text = cli("estimate", "sft.yaml", "--gpu", "H100", "--gpus", "2", cwd=tmp_path).stdout
    assert "note:" not in text and "comparison" not in text
    compared = cli("estimate", "sft.yaml", "--gpu", "H100", "--compare", "--format", "json", cwd=tmp_path)
    assert [v["pool"] for v in json.loads(compared.stdout)["verdicts"]] == ["H100-SXM×1", "default"]


def test_a_comparison_pool_llamafactory_refuses_gets_no_verdict(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {
        ".github/vram-check.yml": ("pools:\n  - {name: one, gpu: A100-80GB, per_node: 1}\n"
                                   "  - {name: eight, gpu: A100-80GB, per_node: 8}\n"),
        # GaLore layer-wise: LLaMA-Factory refuses it on several GPUs (finetuning_args.py), accepts it on one
        "configs/galore.yaml": ("model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\ndo_train: true\n"
                                "finetuning_type: full\nuse_galore: true\ngalore_layerwise: true\n"
                                "per_device_train_batch_size: 1\ncutoff_len: 512\nbf16: true\n"),
    })
    report = json.loads(cli("check", "--format", "json", cwd=repo).stdout)["configs"]["configs/galore.yaml"]
    assert [v["pool"] for v in report["verdicts"]] == ["one"]
    refused = [f for f in report["findings"] if f["rule"] == "pool-refused"]
    assert len(refused) == 1 and "pool 'eight' is left out" in refused[0]["message"]
    assert "layer-wise GaLore" in refused[0]["message"]


def test_absurd_values_and_a_duplicate_key_are_findings_with_their_lines(tmp_path: Path) -> None:
    write(tmp_path, {"sft.yaml": ("model_name_or_path: Qwen/Qwen2.5-0.5B\nstage: sft\nfinetuning_type: lora\n"
                                  "cutoff_len: 1e12\nper_device_train_batch_size: 100000\nbf16: true\n"
                                  "bf16: true\n")})
    out = cli("estimate", "sft.yaml", "--gpu", "H100", "--format", "json", cwd=tmp_path)
    data = json.loads(out.stdout)
    found = {(f["rule"], f["line"], f["severity"]) for f in data["findings"]}
    assert ("absurd-value", 4, "warning") in found  # cutoff_len: OmegaConf reads 1e12 as the number 10^12
    assert ("absurd-value", 5, "warning") in found  # per_device_train_batch_size
    assert ("duplicate-key", 6, "error") in found  # LLaMA-Factory's loader refuses it: the config cannot run
    assert data["plan"]["cutoff_len"] == 10**12
    cutoff = next(f for f in data["findings"] if f["line"] == 4)
    assert "position limit (max_position_embeddings 32,768)" in cutoff["message"]  # Qwen2.5-0.5B's config.json


def test_a_deepspeed_path_outside_the_repository_says_so(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere", {"ds.json": '{"zero_optimization": {"stage": 3}}'})
    repo = write(tmp_path / "repo", {"sft.yaml": config("Qwen/Qwen2.5-0.5B", f"deepspeed: {outside / 'ds.json'}\n")})
    out = cli("estimate", "sft.yaml", "--gpu", "H100", cwd=repo)
    assert out.returncode == 2
    assert f"DeepSpeed config '{outside / 'ds.json'}' is outside the repository" in out.stderr


def test_unsupported_architecture_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, {"sft.yaml": config("meta-llama/Llama-3.2-11B-Vision-Instruct"),
                     "mllama/config.json": json.dumps({"architectures": ["MllamaForConditionalGeneration"],
                                                       "model_type": "mllama", "text_config": {}})})
    out = cli("estimate", "sft.yaml", "--model", "mllama", "--gpu", "H100", cwd=tmp_path)
    assert out.returncode == 2
    assert "has model_type 'mllama', which vram-check cannot count from config.json" in out.stderr


def test_catalog_aliases_answer_offline_with_the_identical_file(tmp_path: Path) -> None:
    write(tmp_path, {"sft.yaml": config("meta-llama/Meta-Llama-3-8B-Instruct")})
    out = cli("estimate", "sft.yaml", "--gpu", "H100", "--format", "json", cwd=tmp_path, env={"HF_HUB_OFFLINE": "1"})
    data = json.loads(out.stdout)
    assert data["model"]["id"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert data["model"]["parameters"]["total"] == ORACLE["meta-llama__Meta-Llama-3-8B.json"]["total"]
    assert data["model"]["source"].startswith("bundled catalog: meta-llama__Meta-Llama-3-8B.json, proven identical")


def test_the_action_model_input(tmp_path: Path) -> None:
    import contextlib
    import io

    from bot import action

    repo = write(tmp_path / "repo", {".github/vram-check.yml": POLICY_ONE_GPU, "configs/a.yaml": config("team/x"),
                                     "models/x/config.json": json.dumps(LLAMA_1B)})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "GITHUB_EVENT_NAME": "push",
           "RUNNER_TEMP": str(tmp_path), "INPUT_COMMENT": "false", "INPUT_MODEL": "team/x=models/x\n"}
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(repo)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = action.main(env)
    finally:
        os.chdir(previous)
    report = json.loads((tmp_path / "vram-check-report.json").read_text())
    assert code == 0, stdout.getvalue() + stderr.getvalue()
    assert report["configs"]["configs/a.yaml"]["model"]["parameters"]["total"] == LLAMA_1B_PARAMS


def test_the_service_remembers_failed_lookups_for_a_short_time() -> None:
    """The App's workers build their resolver with VRAM_CHECK_HUB_FAILURE_TTL_S (default 60 s); how a resolver
    forgets a failure after its TTL is tested in test_hub.py (test_failed_lookups_are_forgotten_after_the_ttl)."""
    from bot.settings import Settings
    from bot.webhooks import worker

    env = {"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t"}
    assert Settings.from_env(env).hub_failure_ttl_s == 60
    settings = Settings.from_env({**env, "VRAM_CHECK_HUB_FAILURE_TTL_S": "30"})
    assert worker.model_resolver(settings).failure_ttl_s == 30


def test_the_app_answers_models_from_the_policy_map_at_the_base_commit(tmp_path: Path) -> None:
    """The App reads the policy and the config.json files its models: map names from the pull request's base
    commit (through the GitHub API), with the Hub unreachable: a pull request cannot swap the architecture its
    own check uses."""
    from fakes.github import FakeGitHub, FakeGitHubState
    from fakes.service import RunningService, pull_request_payload

    from bot.render.markdown import MARKER
    from bot.settings import Settings

    token, secret = "ghp_offline_app_tests", "offline-webhook-secret"
    tiny = json.loads((CATALOG / "Qwen__Qwen2.5-0.5B.json").read_text())
    huge = json.loads((CATALOG / "meta-llama__Llama-3.1-405B.json").read_text())
    policy = POLICY_ONE_GPU + "models:\n  acme/private-0.5b: models/private\n  /data/models/base: models/private\n"
    with FakeGitHub(FakeGitHubState(token=token)) as github:
        settings = Settings(webhook_secret=secret, token=token, api_url=github.url,
                            hf_endpoint=f"http://127.0.0.1:{closed_port()}", hf_cache_dir=tmp_path / "hf",
                            github_retries=1, worker_mode="thread", workers=1,
                            state_dir=tmp_path / "state")
        repo, number = "acme/private-configs", 1
        github.state.add_repo(repo, base_files={".github/vram-check.yml": policy,
                                                "models/private/config.json": json.dumps(tiny)})
        head = github.state.open_pull(repo, number, head_files={
            "configs/a.yaml": config("acme/private-0.5b"), "configs/b.yaml": config("/data/models/base"),
            "configs/c.yaml": config("acme/not-mapped"),
            "models/private/config.json": json.dumps(huge),  # changed in the pull request: not used
        })
        base = github.state.repos[repo].pulls[number].base_sha
        with RunningService(settings) as service:
            response = service.deliver("pull_request", pull_request_payload("opened", repo, number, head, base))
            assert response.status_code == 202
            service.wait_idle()
        [body] = [c.body for c in github.state.comments(repo, number) if c.body.startswith(MARKER)]
    rows = {line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| `configs/")}
    assert "✅ fits" in rows["`configs/a.yaml`"] and "✅ fits" in rows["`configs/b.yaml`"]
    assert "⛔ error" in rows["`configs/c.yaml`"]
    assert "cannot be reached" in body
