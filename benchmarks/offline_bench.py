"""Issue 15's "done" numbers: `vram-check` on LLaMA-Factory's own example configs on a machine without network.

Runs the installed CLI as a user does (a fresh process per command, production defaults, an empty Hub cache)
on a copy of the example configs, with the Hub simulated three ways:

- refused:  HF_ENDPOINT on a closed loopback port (no network: every connection is refused at once);
- offline:  HF_HUB_OFFLINE=1 (huggingface_hub's own switch);
- silent:   HF_ENDPOINT on a loopback listener that accepts and never answers (a black-holed route), with the
            default probe timeout (HF_HUB_ETAG_TIMEOUT, 10 s).

Each timing is the median wall-clock time of three runs (min–max beside it) and the median CPU time of the
process, since the machine may be shared. Then the same check with every unresolvable model answered
locally, once through `--model ID=PATH` and once through the policy's `models:` map. There is no real
config.json for those ids here, so each is answered with one stand-in (the bundled Llama-3.2-1B
config.json): this measures that every config resolves, not accuracy.

    python -m benchmarks.offline_bench [--examples tests/data/llamafactory_examples]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = ROOT / "estimator" / "catalog" / "meta-llama__Llama-3.2-1B.json"
MODEL_ERRORS = ("is not bundled or in the local Hub cache", "neither a Hub model id nor an existing path",
                "model config '", "not found on the Hub")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentListener:
    """Accepts TCP connections on loopback and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


REPEAT = 3  # the machine is shared: each timing is the median of three runs, with the CPU time beside it


def run(args: list[str], cwd: Path, env: dict[str, str], repeat: int = REPEAT
        ) -> tuple[str, subprocess.CompletedProcess[str]]:
    """'median wall (min–max), CPU' of `repeat` runs of the CLI, and the last run's output."""
    vram_check = shutil.which("vram-check", path=str(Path(sys.executable).parent)) or "vram-check"
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([vram_check, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    spread = f" ({min(walls):.2f}–{max(walls):.2f})" if repeat > 1 else ""
    return f"{statistics.median(walls):5.2f} s{spread}, CPU {statistics.median(cpus):.2f} s", out


def summary(report: dict[str, Any]) -> dict[str, int]:
    configs = report["configs"].values()
    model_errors = [c for c in configs if c["error"] and any(m in c["error"] for m in MODEL_ERRORS)]
    return {"configs": len(report["configs"]), "with verdict": sum(1 for c in configs if c["verdicts"]),
            "model not available": len(model_errors),
            "other errors": sum(1 for c in configs if c["error"]) - len(model_errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path, default=ROOT / "tests" / "data" / "llamafactory_examples")
    args = parser.parse_args(argv)
    if not args.examples.is_dir():
        print(f"no examples at {args.examples}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = work / "examples"
        shutil.copytree(args.examples, repo)
        base = {"PATH": os.environ["PATH"], "HOME": str(work), "HF_HOME": str(work / "hf-empty")}
        refused = {**base, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
        rows: list[tuple[str, str, str]] = []

        def check(name: str, env: dict[str, str], *extra: str, repeat: int = REPEAT) -> dict[str, Any]:
            report_path = work / "report.json"
            seconds, out = run(["check", "--output", str(report_path), *extra], repo, env, repeat)
            report: dict[str, Any] = json.loads(report_path.read_text())
            counts = summary(report)
            lines = out.stdout.splitlines()
            unavailable_lines = sum(1 for line in lines if any(m in line for m in MODEL_ERRORS))
            rows.append((f"check, {name}", seconds,
                         ", ".join(f"{v} {k}" for k, v in counts.items())
                         + f"; {unavailable_lines} lines naming an unavailable model; stdout {len(lines)} lines, "
                         f"stderr {len(out.stderr.splitlines())} lines; exit {out.returncode}"))
            return report

        first = check("no network (connection refused)", refused)
        check("HF_HUB_OFFLINE=1", {**base, "HF_HUB_OFFLINE": "1"})
        silent = SilentListener()
        try:
            check("silent Hub (accepts, never answers; 10 s probe timeout)",
                  {**base, "HF_ENDPOINT": f"http://127.0.0.1:{silent.port}"}, repeat=1)
            connections = len(silent.accepted)
        finally:
            silent.close()
        rows[-1] = (rows[-1][0], rows[-1][1], rows[-1][2] + f"; {connections} connection(s) to the Hub")

        (repo / "sft_unbundled.yaml").write_text("model_name_or_path: team/not-bundled-7b\nstage: sft\n"
                                                 "do_train: true\nfinetuning_type: lora\n")
        for name, env in (("no network", refused), ("HF_HUB_OFFLINE=1", {**base, "HF_HUB_OFFLINE": "1"})):
            seconds, out = run(["estimate", "sft_unbundled.yaml"], repo, env)
            rows.append((f"estimate, unbundled model, {name}", seconds,
                         f"exit {out.returncode}; stderr {len(out.stderr.splitlines())} line(s)"))
        (repo / "sft_unbundled.yaml").unlink()

        unresolved = sorted({c["model"]["id"] for c in first["configs"].values()
                             if c["error"] and any(m in c["error"] for m in MODEL_ERRORS)})
        flags = [f"--model={model}={STAND_IN}" for model in unresolved]
        check(f"--model for the {len(unresolved)} unavailable models (stand-in config)", refused, *flags)
        (repo / "models" / "stand-in").mkdir(parents=True, exist_ok=True)
        shutil.copy(STAND_IN, repo / "models" / "stand-in" / "config.json")
        (repo / ".github").mkdir(exist_ok=True)
        policy = "pools:\n  - {name: default, gpu: A100-80GB, per_node: 8}\nmodels:\n" + "".join(
            f"  {json.dumps(model)}: models/stand-in\n" for model in unresolved)
        (repo / ".github" / "vram-check.yml").write_text(policy)
        check(f"policy models: map for the {len(unresolved)} unavailable models (stand-in config)", refused)

    print(f"LLaMA-Factory examples: {args.examples} ({sys.platform}, {os.cpu_count()} CPUs)")
    width = max(len(row[0]) for row in rows)
    for name, seconds, what in rows:
        print(f"{name:<{width}}  {seconds}  {what}")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"unavailable model ids: {', '.join(unresolved)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
