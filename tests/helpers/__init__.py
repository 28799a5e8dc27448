"""Helpers shared by the test modules: ``from helpers.<module> import …``.

A package rather than imports from ``conftest`` or from other test modules, which work only in
pytest's default ``prepend`` import mode: ``tests/`` is on ``sys.path`` through the
``pythonpath`` setting in ``pyproject.toml``, so this package imports the same way under
``--import-mode=importlib``. Fixtures shared by every module stay in ``conftest.py``.
"""
