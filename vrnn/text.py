"""Small text helpers shared by the library, the CLIs and the app."""

from __future__ import annotations

MAX_MESSAGE = 300


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one line for an error message: every run of whitespace or control
    characters becomes one space, the ends are stripped, and the result is cut to
    ``limit`` characters (ending in ``...`` when cut)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text if text is not None else ""))
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: max(limit - 3, 0)] + "..."
