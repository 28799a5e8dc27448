"""regsuite-cutout: a third-party regsuite plugin package with one plugin of every kind.

- task ``tabular_classification`` (:mod:`.tabular`): feature vectors, cross-entropy, accuracy;
- dataset ``moons`` (:mod:`.moons`): scikit-learn's two moons, generated;
- model ``mlp`` (:mod:`.mlp`): dense layers with dropout slots;
- regularizer ``cutout`` (:mod:`.cutout`): Cutout for image classification.

This module is the package's one entry point (``[project.entry-points.regsuite]`` in
``pyproject.toml``): regsuite imports it and calls the register hooks below.
"""
from __future__ import annotations

from regsuite import hookimpl

from regsuite_cutout.cutout import Cutout
from regsuite_cutout.mlp import MLP
from regsuite_cutout.moons import Moons
from regsuite_cutout.tabular import TabularClassification

__all__ = ["Cutout", "MLP", "Moons", "TabularClassification"]


@hookimpl
def regsuite_register_tasks():
    return [TabularClassification]


@hookimpl
def regsuite_register_datasets():
    return [Moons]


@hookimpl
def regsuite_register_models():
    return [MLP]


@hookimpl
def regsuite_register_regularizers():
    return [Cutout]
