"""The whole plugin contract of regsuite.

A plugin is any module or object with functions marked ``@regsuite.hookimpl`` whose names
are the hooks below. Built-in plugins (``regsuite.plugins``) use exactly these hooks;
third-party distributions register a module under the entry-point group ``regsuite``::

    # pyproject.toml of a third-party package
    [project.entry-points.regsuite]
    cutout = "regsuite_cutout"

    # regsuite_cutout/__init__.py (or a single module regsuite_cutout.py)
    from regsuite import hookimpl
    from regsuite.api import Regularizer

    class Cutout(Regularizer):
        name = "cutout"
        ...

    @hookimpl
    def regsuite_register_regularizers():
        return [Cutout]

Every register hook takes no arguments and returns a list of classes. Each class has a
unique ``name`` within its kind and a pydantic ``Params`` model that the spec's entry for it
is validated against when the spec loads (see :mod:`regsuite.api` for the base classes and
the points in training where each kind acts).

Load order is fixed: these specs, then the built-in plugins, then entry points of the group
``regsuite`` (all skipped when ``REGSUITE_DISABLE_EXTERNAL_PLUGINS=1``; some distributions with
``REGSUITE_DISABLE_PLUGINS=dist-a,dist-b``). A third-party plugin that fails to import, whose
hook raises, that implements a hook not defined here or registers a class that is no named
plugin class is left out whole, with a warning naming its distribution, version and the reason;
the others load. A name taken by a built-in stays the built-in's; a name two third-party
plugins register goes to neither (both are reported). See :mod:`regsuite.registry`.
"""
from __future__ import annotations

from regsuite import hookspec


@hookspec
def regsuite_register_tasks() -> list[type]:
    """Return :class:`regsuite.api.Task` subclasses.

    A task owns the loss, how raw data becomes a batch, and the metrics the leaderboard
    shows for it (``image_classification``, ``sequence_labelling``).
    """


@hookspec
def regsuite_register_datasets() -> list[type]:
    """Return :class:`regsuite.api.Dataset` subclasses.

    A dataset loads train / val (and optionally test) splits as in-memory tensors for one
    task, downloading and caching as needed. A dataset whose files can be fetched overrides
    the classmethod ``download(directory)``, which ``regsuite data download NAME`` calls
    (the core knows no dataset by name).
    """


@hookspec
def regsuite_register_models() -> list[type]:
    """Return :class:`regsuite.api.Model` subclasses.

    A model builds an ``nn.Module`` for a dataset's :class:`regsuite.api.DataInfo` and
    declares the slots (for example ``"dropout"``) where regularizers may act.
    """


@hookspec
def regsuite_register_regularizers() -> list[type]:
    """Return :class:`regsuite.api.Regularizer` subclasses.

    A regularizer acts at defined points of training: reading the loaded data, transforming
    the training data once, filling the model's slots, shaping optimizer parameter groups,
    wrapping the data loss, transforming each training batch, adding a penalty of the
    parameters or of the outputs (reported apart from the data loss), after each optimizer
    step, and after each epoch (where it may stop training). See :class:`regsuite.api.Regularizer`.
    """
