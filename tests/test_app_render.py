"""The Markdown report (shared by the App, the Action and `--format markdown`) and the service settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_app_auth import keypair
from test_app_pull_request import FULL_8B, POLICY, lora

from bot.cli import main
from bot.render.markdown import GITHUB_COMMENT_LIMIT, MARKER, RenderContext, merged_edits, render_markdown
from bot.settings import Settings, SettingsError
from estimator.hub import ModelResolver
from rules.pipeline import check_configs
from rules.policy import load_policy
from rules.report import ConfigReport, RunReport, YamlEdit
from rules.sources import ParsedFiles


class Files:
    def __init__(self, files: dict[str, str]) -> None:
        self._files = files

    def read_text(self, path: str) -> str:
        if path not in self._files:
            raise FileNotFoundError(path)
        return self._files[path]


def report_for(files: dict[str, str], base: dict[str, str] | None = None) -> RunReport:
    return check_configs(sorted(files), ParsedFiles(Files(files)), load_policy(POLICY), ModelResolver(offline=True),
                         ParsedFiles(Files(base)) if base is not None else None)


def test_the_report_through_the_real_pipeline() -> None:
    report = report_for({"configs/full.yaml": FULL_8B, "configs/sft.yaml": lora()},
                        base={"configs/sft.yaml": lora().replace("cutoff_len: 512", "cutoff_len: 256")})
    body = render_markdown(report, context=RenderContext(head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821"))
    assert body.split("\n", 1)[0] == MARKER
    assert "won't fit" in body.split("\n")[3]  # the one-line verdict comes right after the title
    for part in ("weights", "gradients", "optimizer", "activations"):
        assert f"| {part} |" in body
    assert body.count("```mermaid\npie") == 2 and body.count("<details>") == 2
    assert "Estimated for `ec26c3e`" in body
    assert "Change against the base branch: +" in body and "cutoff\\_len 256 → 512" in body  # escaped Markdown
    assert "**Assumptions**" in body and "Smallest changes that make `configs/full.yaml` fit" in body
    # sizes are GiB with one decimal: every "N GiB" has exactly one digit after the point
    sizes = re.findall(r"(\d+(?:\.\d+)?) GiB", body)
    assert sizes and all(re.fullmatch(r"\d+\.\d", size) for size in sizes)
    assert "color" not in body.lower() and "#fff" not in body.lower()  # theme-neutral


def test_render_is_pure_and_cli_default_has_no_footer_sha() -> None:
    report = report_for({"configs/sft.yaml": lora()})
    assert render_markdown(report) == render_markdown(report)
    assert "Estimated for" not in render_markdown(report)


def test_long_reports_stay_under_githubs_limit_with_a_note() -> None:
    one = report_for({"configs/full.yaml": FULL_8B}).configs[0]
    many = RunReport(configs=tuple(ConfigReport(**{**one.__dict__, "path": f"configs/run-{i:04d}.yaml"})
                                   for i in range(120)))
    body = render_markdown(many, context=RenderContext(head_sha="a" * 40))
    assert len(body) <= GITHUB_COMMENT_LIMIT
    assert "Truncated" in body and body.startswith(MARKER)
    assert body.rstrip().endswith("</sub>")  # the footer survives truncation


def test_errors_are_visible_not_folded() -> None:
    report = report_for({"configs/broken.yaml": "model_name_or_path: [unclosed\n"})
    body = render_markdown(report)
    assert "⛔ **configs/broken.yaml** could not be checked:" in body
    assert "⛔" in body.split("\n")[3]


def test_same_line_edits_are_merged() -> None:
    edits = (YamlEdit("c.yaml", 11, "bf16: true", "bf16: true\npure_bf16: true"),
             YamlEdit("c.yaml", 11, "bf16: true", "bf16: false"),
             YamlEdit("c.yaml", None, None, "# vram-check: pool=dev"))
    assert merged_edits(edits) == [YamlEdit("c.yaml", 11, "bf16: true", "bf16: false\npure_bf16: true"),
                                   YamlEdit("c.yaml", None, None, "# vram-check: pool=dev")]


def test_settings_from_the_environment(tmp_path: Path) -> None:
    private, _ = keypair()
    key = tmp_path / "app.pem"
    key.write_text(private)
    settings = Settings.from_env({"GITHUB_WEBHOOK_SECRET": "s3cret", "GITHUB_APP_ID": "29310",
                                  "GITHUB_APP_PRIVATE_KEY": str(key), "GITHUB_API_URL": "https://ghe.example/api/v3",
                                  "VRAM_CHECK_WORKERS": "3"})
    assert settings.uses_app_auth and settings.workers == 3 and settings.api_url == "https://ghe.example/api/v3"
    assert settings.private_key_pem().startswith("-----BEGIN PRIVATE KEY-----")
    assert "s3cret" not in repr(settings)
    second_line = private.split("\n")[1]
    inline = Settings.from_env({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1",
                                "GITHUB_APP_PRIVATE_KEY": private.strip().replace("\n", "\\n")})
    assert f"\n{second_line}\n" in inline.private_key_pem()
    token = Settings.from_env({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "ghp_x"})
    assert not token.uses_app_auth and token.api_url == "https://api.github.com"


@pytest.mark.parametrize(("environ", "message"), [
    ({"GITHUB_TOKEN": "ghp_x"}, "GITHUB_WEBHOOK_SECRET is not set"),
    ({"GITHUB_WEBHOOK_SECRET": "s"}, "GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY"),
    ({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_APP_ID": "1"}, "GITHUB_APP_PRIVATE_KEY is not"),
    ({"GITHUB_WEBHOOK_SECRET": "s", "GITHUB_TOKEN": "t", "VRAM_CHECK_WORKERS": "many"}, "VRAM_CHECK_WORKERS"),
])
def test_bad_settings_are_one_clear_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(environ)


def test_serve_without_settings_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--port", "0"]) == 2
    assert "GITHUB_WEBHOOK_SECRET is not set" in capsys.readouterr().err
