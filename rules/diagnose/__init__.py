"""`vram-check diagnose`: explain a real out-of-memory failure from its training log.

Public interface (the CLI and the bot's `/vram-check diagnose` use these):
    diagnose_text(text) -> Diagnosis        a pasted log
    diagnose_file(path) -> Diagnosis        a log file of any size, streamed
    render_text / render_markdown / render_json(diagnosis) -> str
"""

from rules.diagnose.model import Diagnosis, MeasuredPeaks, OomEvent
from rules.diagnose.render import render_json, render_markdown, render_text
from rules.diagnose.scanner import diagnose_file, diagnose_lines, diagnose_text

__all__ = [
    "Diagnosis",
    "MeasuredPeaks",
    "OomEvent",
    "diagnose_file",
    "diagnose_lines",
    "diagnose_text",
    "render_json",
    "render_markdown",
    "render_text",
]
