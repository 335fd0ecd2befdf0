"""The Markdown report: the App's sticky comment, the Action's job summary and `--format markdown`.

Infracost-like: a one-line verdict, a table of config × pool, then per config a collapsible breakdown
with a Mermaid chart, assumptions, findings, suggestions and the change against the base branch.
Pure function of the report; no colours (GitHub's light and dark themes both apply), sizes in GiB with
one decimal. The body stays under GitHub's 65,536-character comment limit: breakdowns that do not fit
are dropped with a note.

Everything that comes from the repository or the pull request (paths, model ids, pool and GPU names,
messages that quote config values, assumptions, notes) goes through bot.render.escape on its way in: code
spans that backticks cannot end, HTML and Markdown inert, no live mentions, references or links.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.render import escape
from estimator.units import GiB, gib, gib_range, signed_gib
from rules.report import ConfigReport, Finding, RunReport, Suggestion, YamlEdit

MARKER = "<!-- vram-check -->"
GITHUB_COMMENT_LIMIT = 65_536  # "Body is too long (maximum is 65536 characters)"
BUDGET = 64_000  # leaves room for the truncation note and the footer
COMPONENTS = ("weights", "gradients", "optimizer", "activations", "logits", "buffers", "overhead")

VERDICT_LABEL = {"fit": "✅ fits", "tight": "⚠️ tight", "no-fit": "❌ no fit", "unknown": "❔ unknown",
                 "error": "⛔ error"}
SEVERITY_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


@dataclass(frozen=True)
class RenderContext:
    """What the front knows that the report does not."""

    head_sha: str | None = None
    marker: str = MARKER
    title: str | None = None  # plain text, escaped when rendered; e.g. "What-if: pool=dev gpus=2"
    only: str | None = None  # render just this config (explain)
    inline_suggestions: frozenset[tuple[str, int, str]] = field(default_factory=frozenset)  # posted inline
    notes: tuple[str, ...] = ()  # the front's own notes, as Markdown: a front escapes any value it quotes
    footer: bool = True


_code = escape.code
_text = escape.text


def _fence(text: str, info: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside (reviewdog's rule)."""
    longest = max((len(run) for run in text.split("\n") for run in _backtick_runs(run)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def _backtick_runs(line: str) -> Iterable[str]:
    run = ""
    for char in line:
        if char == "`":
            run += "`"
        elif run:
            yield run
            run = ""
    if run:
        yield run


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def headline(report: RunReport) -> str:
    """The one-line verdict: errors first (the config cannot run as written), then what does not fit."""
    configs = list(report.configs)
    if not configs:
        return "**No training configs to check.**"
    total = len(configs)
    noun = _plural(total, "config", "configs")
    parts: list[str] = []
    errors = report.count("error")
    if errors:
        parts.append(f"⛔ {errors} of {total} {noun} {_plural(errors, 'has', 'have')} errors "
                     "(LLaMA-Factory would stop, or vram-check could not check it)")
    no_fit = [c for c in configs if c.status == "no-fit" and c.target is not None]
    if no_fit:
        worst = max(no_fit, key=lambda c: c.target.peak_bytes - c.target.capacity_bytes if c.target else 0)
        verdict = worst.target
        assert verdict is not None
        parts.append(f"❌ {len(no_fit)} of {total} {noun} won't fit — worst: {_code(worst.path)} needs "
                     f"{gib_range(verdict.peak_bytes, *verdict.peak_range_bytes)} per GPU, "
                     f"{gib(verdict.capacity_bytes)} usable on "
                     f"{_text(verdict.gpu)} ({_text(verdict.pool)})")
    unknown = report.count("unknown")
    if unknown:
        parts.append(f"❔ {unknown} of {total} {noun} {_plural(unknown, 'uses', 'use')} a setup vram-check does not "
                     "model: no verdict")
    if parts:
        return "**" + "** · **".join(parts) + "**"
    tight = report.count("tight")
    if tight:
        return f"**⚠️ {tight} of {total} {noun} fit with little headroom**; none is expected to OOM"
    return f"**✅ All {total} {noun} fit** on the declared GPUs"


def _table(configs: Sequence[ConfigReport]) -> list[str]:
    rows = ["| Config | Pool | Verdict | Peak / GPU | Usable / GPU | Headroom | Min GPUs | vs base |",
            "|---|---|---|--:|--:|--:|--:|--:|"]
    for config in configs:
        if config.error is not None:
            rows.append(f"| {_code(config.path, table=True)} | — | {VERDICT_LABEL['error']} | — | — | — | — | — |")
            continue
        delta = signed_gib(config.base_delta) if config.base_delta is not None else "new" if config.is_new else "—"
        for verdict in config.verdicts:
            min_gpus = str(verdict.min_gpus) if verdict.min_gpus is not None else "—"
            label = VERDICT_LABEL[config.status if verdict is config.target else verdict.verdict]
            pool = f"{_text(verdict.pool)} · {verdict.gpus}× {_text(verdict.gpu)}"
            if verdict is not config.target:
                pool += " (comparison)"
            known = verdict.verdict != "unknown"  # no number for a setup the estimate does not cover
            peak = gib_range(verdict.peak_bytes, *verdict.peak_range_bytes) if known else "—"
            headroom = signed_gib(verdict.headroom_bytes) if known else "—"
            rows.append(f"| {_code(config.path, table=True)} | {pool} | {label} | {peak} | "
                        f"{gib(verdict.capacity_bytes)} | {headroom} | {min_gpus} | {delta} |")
    return rows


def _mermaid(config: ConfigReport, parts: Sequence[tuple[str, int]]) -> str:
    shown = [(name, size) for name, size in parts if size > 0]
    lines = [f"pie showData title {escape.mermaid_label(config.path)} · GiB per GPU"]
    lines += [f'    "{name}" : {size / GiB:.1f}' for name, size in shown]
    return _fence("\n".join(lines), "mermaid")


def _components(config: ConfigReport) -> list[tuple[str, int]]:
    assert config.estimate is not None
    components = dict(config.estimate.components)
    ordered = [(name, components.pop(name, 0)) for name in COMPONENTS]
    return ordered + sorted(components.items())


def _findings(findings: Sequence[Finding]) -> list[str]:
    lines = []
    for finding in findings:
        where = f"line {finding.line} · " if finding.line is not None else ""
        lines.append(f"- {SEVERITY_ICON.get(finding.severity, '•')} {where}`{finding.rule}`: {_text(finding.message)}")
    return lines


def merged_edits(edits: Iterable[YamlEdit]) -> list[YamlEdit]:
    """One edit per (file, line): several edits of the same line (as computed against the original text)
    combined — an edit whose first new line is the old line inserts after it, any other replaces it."""
    merged: dict[tuple[str, int | None], YamlEdit] = {}
    order: list[tuple[str, int | None]] = []
    appended: list[YamlEdit] = []
    for edit in edits:
        if edit.line is None or edit.old is None:
            appended.append(edit)
            continue
        key = (edit.file, edit.line)
        current = merged.get(key)
        if current is None:
            merged[key] = edit
            order.append(key)
            continue
        lines = current.new.split("\n")
        new_lines = edit.new.split("\n")
        if new_lines[0] != edit.old:
            lines[0] = new_lines[0]
        merged[key] = YamlEdit(edit.file, edit.line, edit.old, "\n".join([*lines, *new_lines[1:]]))
    return [merged[key] for key in order] + appended


def _suggestion_diff(suggestion: Suggestion, inline: frozenset[tuple[str, int, str]]) -> str | None:
    lines = []
    for edit in merged_edits(suggestion.edits):
        if edit.line is not None and (edit.file, edit.line, edit.new) in inline:
            continue
        if edit.old is not None:
            lines.append(f"- {edit.old}")
        lines += [f"+ {line}" for line in edit.new.split("\n")]
    return _fence("\n".join(lines), "diff") if lines else None


def _yaml_value(value: object) -> str:
    """A value as it would be written in the YAML (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _suggestions(config: ConfigReport, inline: frozenset[tuple[str, int, str]]) -> list[str]:
    out: list[str] = []
    for number, suggestion in enumerate(config.suggestions, start=1):
        changes = ", ".join(_code(f"{key}: {_yaml_value(value)}") for key, value in suggestion.changes.items())
        cost = f" Cost: {_text(_sentence(suggestion.cost))}" if suggestion.cost else ""
        out.append(f"**{number}.** {changes} → {gib(suggestion.peak_bytes)} per GPU, "
                   f"{VERDICT_LABEL.get(suggestion.verdict, suggestion.verdict)}. {_text(_sentence(suggestion.why))}"
                   f"{cost}")
        edits = merged_edits(suggestion.edits)
        if any(e.line is not None and (e.file, e.line, e.new) in inline for e in edits):
            out[-1] += " *Posted as a suggested change in the review, ready to commit.*"
        diff = _suggestion_diff(suggestion, inline)
        out.append("")
        if diff:
            out += [diff, ""]
    return out


def breakdown(config: ConfigReport, *, open_: bool = False) -> str:
    """The collapsible per-config section."""
    attribute = " open" if open_ else ""
    lines: list[str] = []
    if config.error is not None:  # visible, not folded: this is what the author has to fix
        lines.append(f"⛔ **{_text(config.path)}** could not be checked: {_text(config.error, width=1000)}")
        if config.findings:
            lines += ["", *_findings(config.findings)]
        return "\n".join(lines)
    estimate = config.estimate
    assert estimate is not None
    parts = _components(config)
    total = sum(size for _, size in parts) or 1
    if config.errors:  # visible, not folded: LLaMA-Factory would stop on these before training
        lines += [f"⛔ **{_text(config.path)}** would not run as written:", "", *_findings(config.errors), ""]
    if not estimate.modelled:  # visible, not folded: why there is no verdict
        lines += [f"❔ **{_text(config.path)}**: no verdict, vram-check does not model part of this setup:", "",
                  *[f"- {_text(part)}" for part in estimate.not_modelled], ""]
        summary = "partial estimate (not modelled), no verdict"
    else:
        summary = f"{gib(estimate.peak_bytes)} per GPU at the peak ({escape.html(estimate.peak_phase)})"
    # raw HTML: Markdown is not parsed there, so the path is escaped as HTML text
    lines += [f"<details{attribute}><summary><b>{escape.html(config.path)}</b>: {summary}</summary>", ""]
    model = f"Model {_code(config.model_id)}" if config.model_id else "Model"
    if config.parameters is not None:
        model += (f", {config.parameters.total / 1e9:.2f} B parameters "
                  f"({config.parameters.trainable / 1e6:,.1f} M trainable)")
    lines.append(model + ".")
    lines += ["", "| Part | Per GPU | Share |", "|---|--:|--:|"]
    lines += [f"| {name} | {gib(size)} | {100 * size / total:.0f}% |" for name, size in parts if size]
    lines += [f"| allocated (torch max_memory_allocated) | {gib(estimate.allocated_bytes)} | |",
              f"| reserved (torch max_memory_reserved) | {gib(estimate.reserved_bytes)} | |",
              f"| **peak on the device (nvidia-smi)** | **{gib(estimate.peak_bytes)}** | |",
              f"| real runs of this setup (error band) | {gib(estimate.peak_low_bytes)} – "
              f"{gib(estimate.peak_high_bytes)} | |", "",
              f"Verdicts hold the band's top against each GPU. Band: {_text(estimate.band)}.", ""]
    lines += [_mermaid(config, parts), ""]
    if config.base_delta is not None:
        changed = f" ({_text('; '.join(config.base_changes))})" if config.base_changes else ""
        lines += [f"Change against the base branch: {signed_gib(config.base_delta)} per GPU at the peak{changed}.",
                  ""]
    if estimate.assumptions:
        lines += ["**Assumptions**", "", *[f"- {_text(a)}" for a in estimate.assumptions], ""]
    if config.findings:
        lines += ["**Findings**", "", *_findings(config.findings), ""]
    lines.append("</details>")
    return "\n".join(lines)


def _footer(context: RenderContext) -> str:
    sha = f"Estimated for {_code(context.head_sha[:7])} · " if context.head_sha else ""
    return (f"<sub>{sha}updates on every push · re-run: `/vram-check` · what-if: "
            "`/vram-check pool=NAME gpus=N` · help: `/vram-check help`</sub>")


def render_markdown(report: RunReport, *, context: RenderContext | None = None) -> str:
    """The Markdown report, starting with the hidden marker and under GitHub's comment limit."""
    context = context or RenderContext()
    configs = [c for c in report.configs if context.only is None or c.path == context.only]
    head = [context.marker, "### 🧮 vram-check"]
    if context.title:
        head.append(f"*{_text(context.title)}*")
    head += ["", headline(report) if context.only is None else f"Breakdown of {_code(context.only)}", ""]
    if configs:
        head += [*_table(configs), ""]
    for note in (*(_text(n, width=1000) for n in report.notes), *context.notes):
        head.append(f"> {note}")
    sections: list[str] = []
    for config in configs:
        parts = [breakdown(config, open_=context.only is not None)]
        suggestions = _suggestions(config, context.inline_suggestions)
        if suggestions and config.error is None:
            parts += ["", f"**Smallest changes that make {_code(config.path)} fit**", "", *suggestions]
        sections.append("\n".join(parts))
    footer = _footer(context) if context.footer else ""
    body = "\n".join(head).rstrip() + "\n"
    omitted = 0
    for section in sections:
        if omitted or len(body) + len(section) + len(footer) + 2 > BUDGET:
            omitted += 1
            continue
        body += "\n" + section + "\n"
    if len(body) > BUDGET:  # the table alone is too long: cut it
        body = body[:BUDGET].rsplit("\n", 1)[0] + "\n"
        omitted = len(sections)
    if omitted:
        body += (f"\n> ✂️ Truncated: {omitted} section(s) left out to stay under GitHub's 65,536-character "
                 "comment limit. Run `vram-check check` locally for the full report.\n")
    if footer:
        body += "\n" + footer + "\n"
    assert len(body) <= GITHUB_COMMENT_LIMIT
    return body
