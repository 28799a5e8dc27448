"""Domain errors. The core raises these; the CLI turns them into one message and exit 2."""
from __future__ import annotations


class RegsuiteError(Exception):
    """A problem the user can fix: the message names the cause, the hint the fix."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {d}" for d in self.details)]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class SpecError(RegsuiteError):
    """The spec file or an override is invalid."""


class DataError(RegsuiteError):
    """Data is missing, corrupt or does not match what the spec asks for."""


MAX_LISTED = 10


def at_most(lines: list[str], limit: int = MAX_LISTED, more: str = "more") -> list[str]:
    """The first ``limit`` of ``lines``, then one ``… and N more`` line for the rest: how
    every long list in a message (an error's details, unfinished runs) is cut."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"… and {len(lines) - limit} {more}"]
