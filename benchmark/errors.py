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


class RunFailed(RegsuiteError):
    """One or more runs failed; finished runs are kept."""

    exit_code = 1
