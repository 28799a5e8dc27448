"""Every plugin of the package through regsuite's author's kit (regsuite.testing).

Run ``python -m pytest`` in this folder (which puts the package on ``sys.path``), or ``pytest``
once it is installed (``pip install -e .``): the kit checks the classes themselves, in this
environment's registry with them added, installed or not.
"""
from __future__ import annotations

import pytest

from regsuite.registry import Registry, get_registry
from regsuite.testing import check_plugin, check_regularizer, registry_with
from regsuite_cutout import MLP, Cutout, Moons, TabularClassification

PACKAGE = (TabularClassification, Moons, MLP, Cutout)


@pytest.fixture(scope="module")
def registry():
    """This environment's plugins with the package's: the model and the dataset need the task."""
    return registry_with(*PACKAGE)


@pytest.mark.parametrize("cls", PACKAGE, ids=lambda cls: cls.name)
def test_the_kit_passes(cls, tmp_path, registry):
    check_plugin(cls, tmp_path, registry=registry)


@pytest.mark.parametrize("name", ["l2", "dropout"])
def test_builtin_regularizers_work_on_the_new_task(name, tmp_path):
    # Only the package's task, dataset and model: the check trains on tabular_classification alone.
    only_the_package = registry_with(TabularClassification, Moons, MLP, base=Registry([]))
    check_regularizer(get_registry().cls("regularizer", name), tmp_path, registry=only_the_package)
