"""`vram-check diagnose`: explain a real out-of-memory failure from its training log.

Public interface (the CLI and the bot's `/vram-check diagnose` use these):
    diagnose_text(text) -> Diagnosis        a pasted log
    diagnose_file(path) -> Diagnosis        a log file of any size, streamed

Rendering lives with the other renderers: bot.render.diagnose (text, Markdown, JSON).
"""

from rules.diagnose.diagnosis import Diagnosis, MeasuredPeaks, OomEvent
from rules.diagnose.scanner import diagnose_file, diagnose_lines, diagnose_text

__all__ = [
    "Diagnosis",
    "MeasuredPeaks",
    "OomEvent",
    "diagnose_file",
    "diagnose_lines",
    "diagnose_text",
]
