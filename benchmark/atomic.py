"""Files written whole or not at all.

Every file regsuite publishes (leaderboards, figures, results files, checkpoints) is written
under a temporary name in the same folder and renamed over its target. The temporary name is
unique to the process and the call, so that two regsuite processes writing the same file at
once (two runs sharing a store) never rename each other's half-written file: the last rename
wins and every reader sees one whole version.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def replacing(target: Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on failure it is
    removed and ``target`` is left as it was. ``durable`` syncs the data to disk first."""
    temporary = temporary_name(target)
    try:
        yield temporary
        if durable:
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> Path:
    with replacing(target) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return target
