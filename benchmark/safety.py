"""What is read back is untrusted: a results store or a results file may hold anything.

A spec name read back from a store becomes a path (``leaderboard/<name>.md``,
``<results>/plots/<name>/``), so it is checked with the rule of a spec's own ``name`` field
(reused from :class:`regsuite.spec.Spec`, not copied) before it is used, and every file
regsuite writes under an output folder is checked to stay inside it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable

from regsuite.errors import RegsuiteError


@lru_cache(maxsize=1)
def _name_adapter():
    # Imported here: regsuite.spec pulls in torch, which `regsuite leaderboard` does not need.
    from typing import Annotated

    from pydantic import TypeAdapter

    from regsuite.spec import Spec

    return TypeAdapter(Annotated[str, Spec.model_fields["name"]])


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid spec name (None when it is one)."""
    from pydantic import ValidationError

    try:
        _name_adapter().validate_python(name)
    except ValidationError as exc:
        return "; ".join(error["msg"] for error in exc.errors())
    return None


def check_spec_names(names: Iterable[object], source: object | None) -> list[str]:
    """``names`` when every one is a valid spec name; else one error naming every bad one
    (nothing has been written at that point). ``source``: the store or file they were read
    from; None: the command line."""
    names = list(names)
    bad = [(name, problem) for name in names if (problem := name_problem(name)) is not None]
    if not bad:
        return names  # type: ignore[return-value]
    shown = ", ".join(repr(name) for name, _ in bad)
    one = len(bad) == 1
    details = [f"{name!r}: {problem}" for name, problem in bad]
    if source is None:
        raise RegsuiteError(f"{shown} {'is not a valid spec name' if one else 'are not valid spec names'}",
                            details=details, hint="give the name of a spec (letters, digits, '_', '.', '-'), "
                                                  "or its spec file (.toml)")
    raise RegsuiteError(
        f"{source} holds {'a spec named' if one else 'specs named'} {shown}, "
        f"which {'is not a valid spec name' if one else 'are not valid spec names'}; nothing was written",
        details=details,
        hint="regsuite itself stores only valid names (letters, digits, '_', '.', '-'): the store was edited "
             "or made by another program; remove that spec from it, or use another results folder",
    )


def check_spec_name(name: object, source: object | None) -> str:
    return check_spec_names([name], source)[0]


def inside(base: Path, *parts: str) -> Path:
    """``base/<parts…>``, refused unless it lies strictly inside ``base`` once both are
    resolved (``..``, absolute parts and symbolic links included)."""
    target = Path(base).joinpath(*parts)
    root = Path(base).resolve()
    resolved = target.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise RegsuiteError(
            f"refusing to write {target}: it lies outside {base}",
            hint="the name it was made from came from a store or a file that regsuite did not write",
        )
    return target
