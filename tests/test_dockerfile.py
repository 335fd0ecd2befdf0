"""The webhook image, checked without a Docker engine (the build machines have none): the Dockerfile's final
stage, its entry command against the console script pyproject.toml declares, and the wheel the build stage
makes from exactly the files the Dockerfile copies (built here with `pip wheel --no-deps`).

The wheel build uses the setuptools of the test environment (the dev extra pins setuptools>=77, as
pyproject's build-system does), without an isolated build environment.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "estimator", "rules")
SERVICE_ENV = ("GITHUB_WEBHOOK_SECRET", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_TOKEN", "GITHUB_API_URL",
               "HF_ENDPOINT", "HF_TOKEN")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str | None:
        found = self.all(instruction)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, backslash continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{instruction} before FROM"
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def exec_form(args: str | None) -> list[str]:
    assert args is not None
    value = json.loads(args)  # exec form: a JSON array, so signals reach the process and no shell is needed
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(stage.base.startswith("python:3.11-slim") for stage in stages)
    final = stages[-1]
    copied_from = [args for args in final.all("COPY") if args.startswith("--from=")]
    assert copied_from, "the final stage takes the built wheels from the build stage"
    assert not final.all("ADD")


def test_final_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    user = stages[-1].last("USER")
    assert user is not None, "no USER: the service would run as root"
    name = user.split(":")[0]
    assert name not in ("root", "0")


def test_healthcheck_probes_healthz_with_the_standard_library(stages: list[Stage]) -> None:
    check = stages[-1].last("HEALTHCHECK")
    assert check is not None and "/healthz" in check
    command = check.split("CMD", 1)[1].strip()
    argv = exec_form(command)
    assert argv[0] == "python" and "urllib.request" in argv[-1]  # slim images have no curl or wget
    port = exec_form(stages[-1].last("CMD"))
    assert f":{port[port.index('--port') + 1]}/healthz" in argv[-1]  # probes the port the service listens on


def test_the_probe_script_is_valid_python(stages: list[Stage]) -> None:
    check = stages[-1].last("HEALTHCHECK")
    assert check is not None
    script = exec_form(check.split("CMD", 1)[1].strip())[-1]
    compile(script, "<healthcheck>", "exec")


def test_configuration_only_through_the_environment(stages: list[Stage]) -> None:
    final = stages[-1]
    env_text = " ".join(final.all("ENV") + final.all("ARG"))
    for secret in SERVICE_ENV:
        assert secret not in env_text, f"{secret} must come from the environment at run time, not the image"
    assert "HF_HOME=/cache/huggingface" in env_text
    volumes = " ".join(final.all("VOLUME"))
    assert "/cache/huggingface" in volumes


def run_console_script(target: str, argv: list[str], env: dict[str, str] | None = None
                       ) -> subprocess.CompletedProcess[str]:
    """Call a console script's target (`module:function`) from the checkout under test, as the installed
    script would: the tree at ROOT comes first on the path, whatever editable install the venv points at."""
    module, function = target.split(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}({argv!r}))"
    env = dict(env if env is not None else os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False, env=env)


def test_entrypoint_is_the_declared_console_script_and_serve_help_works(stages: list[Stage],
                                                                       pyproject: dict[str, object]) -> None:
    project = pyproject["project"]
    assert isinstance(project, dict)
    scripts = project["scripts"]
    entrypoint = exec_form(stages[-1].last("ENTRYPOINT"))
    command = exec_form(stages[-1].last("CMD"))
    assert entrypoint[0] in scripts
    assert command[0] == "serve" and "0.0.0.0" in command  # reachable from outside the container
    done = run_console_script(scripts[entrypoint[0]], [*entrypoint[1:], *command, "--help"])
    assert done.returncode == 0, done.stderr
    assert "--host" in done.stdout and "--port" in done.stdout


def test_serve_without_settings_fails_with_one_clear_line(stages: list[Stage], pyproject: dict[str, object]) -> None:
    """The image's default command with no environment: a one-line error naming the variable, no traceback."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    entrypoint = exec_form(stages[-1].last("ENTRYPOINT"))
    command = exec_form(stages[-1].last("CMD"))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    done = run_console_script(project["scripts"][entrypoint[0]], [*entrypoint[1:], *command], env)
    assert done.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET" in done.stderr and "Traceback" not in done.stderr


def copied_sources(stage: Stage) -> list[str]:
    sources: list[str] = []
    for args in stage.all("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources += words[:-1]
    return sources


def test_dockerignore_keeps_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # allow-list: secrets, .git and virtualenvs never reach the build context
    allowed = {p.lstrip("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert set(copied_sources(stages[0])) <= allowed


@pytest.fixture(scope="module")
def wheel(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel built from exactly what the build stage copies."""
    context = tmp_path_factory.mktemp("context")
    for source in copied_sources(stages[0]):
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which is missing"
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, context / source)
    out = tmp_path_factory.mktemp("wheels")
    # The build backend from this environment (the dev extra pins setuptools>=77, as pyproject's build-system
    # does): no isolated build environment to download and install on every run.
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           ".", "-w", str(out)], cwd=context, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 and "Could not find a version that satisfies the requirement setuptools" in done.stderr:
        pytest.skip("no package index reachable to fetch the build backend")
    assert done.returncode == 0, done.stderr[-2000:]
    built = list(out.glob("vram_check-*.whl"))
    assert len(built) == 1
    return zipfile.ZipFile(built[0])


def test_wheel_holds_every_module_of_the_three_packages(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in PACKAGES:
        modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")
                   if "__pycache__" not in p.parts}
        assert modules, package
        assert modules <= names, f"missing from the wheel: {sorted(modules - names)[:5]}"


def test_wheel_holds_the_bundled_catalog_and_rule_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    catalog = {p.relative_to(ROOT).as_posix() for p in (ROOT / "estimator" / "catalog").glob("*.json")}
    assert catalog and catalog <= names  # offline model configs
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rules" / "data").iterdir()
            if p.suffix in (".json", ".yaml")}
    assert data and data <= names  # GPU catalog, LLaMA-Factory keys


def test_wheel_holds_the_bundled_deepspeed_configs(wheel: zipfile.ZipFile) -> None:
    """estimator/plan.py reads estimator/catalog/deepspeed/*.json (BUNDLED_DEEPSPEED) when a config names
    LLaMA-Factory's own examples/deepspeed/*.json: the image needs them too."""
    names = set(wheel.namelist())
    bundled = {p.relative_to(ROOT).as_posix() for p in (ROOT / "estimator" / "catalog" / "deepspeed").glob("*.json")}
    assert bundled and bundled <= names, f"missing from the wheel: {sorted(bundled - names)}"


def test_wheel_declares_the_console_script(wheel: zipfile.ZipFile, pyproject: dict[str, object]) -> None:
    entry_points = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    project = pyproject["project"]
    assert isinstance(project, dict)
    for script, target in project["scripts"].items():
        assert f"{script} = {target}" in text
