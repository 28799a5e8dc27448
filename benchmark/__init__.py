"""regsuite: what does a regularizer really do to generalization?

Third-party plugins write ``from regsuite import hookimpl`` and register their classes
through the hooks in :mod:`regsuite.hookspecs`.
"""
import pluggy

NAME = "regsuite"
__version__ = "0.1.0"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

__all__ = ["NAME", "__version__", "hookimpl", "hookspec"]
