"""What the SQL store accepts: value limits checked before anything is written.

A value the database cannot store faithfully (non-UTF-8, a NUL character, oversize) raises
ValueError naming the field, so a bad submission fails with a message instead of a driver error
halfway through a transaction. Diagnostic text (error messages, tracebacks) is made storable
instead of rejected: a task's failure must always be recorded.
"""

from __future__ import annotations

#: Longest values accepted (characters); longer ones raise ValueError before anything is written.
MAX_NAME = 256
MAX_VERSION = 32
MAX_SLUG = 63
MAX_SHORT_TEXT = 1024
MAX_DISPLAY = 1024 * 1024
MAX_KEY = 1024
#: Longest runner state and attempt outcome (the column width).
MAX_STATE = 16
#: Largest task input accepted by the adapter (the core applies its own, smaller default cap).
MAX_INPUT_BYTES = 256 * 1024 * 1024


def check_text(value: str, what: str, max_chars: int | None) -> str:
    """Reject what the database cannot store faithfully: non-UTF-8, NUL characters, oversize.

    Raises:
        ValueError: with a message naming ``what``.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if max_chars is not None and len(value) > max_chars:
        raise ValueError(f"{what} is too long: {len(value):,} characters (at most {max_chars:,})")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid UTF-8 ({exc.reason} at position {exc.start})"
        ) from None
    return value


def clean_text(value: str | None) -> str | None:
    """Diagnostic text (error messages, tracebacks) made storable rather than rejected."""
    if value is None:
        return None
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value
