"""regsuite: what does a regularizer really do to generalization?

Third-party plugins write ``from regsuite import hookimpl`` and register their classes
through the hooks in :mod:`regsuite.hookspecs`.

The version has one source, ``pyproject.toml``, read here from the installed distribution's
metadata. It is part of every run's key (``versions.regsuite``): a new version makes every
stored run "new" to the specs that planned it (see the README's Reproducibility section).
"""
from importlib.metadata import PackageNotFoundError, version

import pluggy

NAME = "regsuite"
try:
    __version__ = version(NAME)
except PackageNotFoundError:  # pragma: no cover - the source tree was put on sys.path by hand
    raise ImportError(
        "regsuite is not installed, so it has no version (one part of every run's key): "
        'install it with pip install -e . (or pip install -e ".[test]")'
    ) from None

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

__all__ = ["NAME", "__version__", "hookimpl", "hookspec"]
