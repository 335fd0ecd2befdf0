"""Errors that reach users as one clear line (exit code 2), never as a traceback."""

from __future__ import annotations

MAX_MESSAGE_CHARS = 600  # a backstop: values in messages go through estimator.source.describe / clip first


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class InputError(Exception):
    """A bad input: names the file and, where known, the key or line that is wrong.

    The message is cut to a bounded length, whatever a caller put in it."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        message = _clip(message, MAX_MESSAGE_CHARS)
        self.file = file
        self.key = key
        self.line = line
        where = file or ""
        if file and line is not None:
            where = f"{file}:{line}"
        prefix = f"{where}: " if where else ""
        suffix = f" (key '{key}')" if key and key not in message else ""
        super().__init__(f"{prefix}{message}{suffix}")
        self.message = message


class ModelNotFound(InputError):
    """The model id or path does not resolve to a config.json (404, typo, no network)."""


class ModelGated(InputError):
    """The Hub refused access: gated or private model without a token that may read it."""


class UnsupportedArchitecture(InputError):
    """config.json lacks the fields needed to count parameters, and no safetensors header helps."""


class RejectedConfig(InputError):
    """A combination LLaMA-Factory itself rejects; the message is LLaMA-Factory's own."""


def did_you_mean(word: str, choices: list[str], cutoff: float = 0.6) -> str:
    """" (did you mean 'x'?)" for the closest choice, or "" when none is close."""
    import difflib

    if len(word) > 100:  # nothing that long is close to a key name; and difflib's cost grows with it
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""
