"""Spec texts that several test modules use, and the plan of a spec file."""


def plan_of(path, *overrides: str):
    """The resolved plan of the spec file at ``path`` under ``--set`` style ``overrides``."""
    from regsuite.registry import get_registry
    from regsuite.spec import load_spec, resolve

    return resolve(load_spec(path, list(overrides)), get_registry())


TINY_SPEC = """
name = "tiny"
task = "image_classification"
seeds = [0, 1]

[dataset]
name = "digits"
train_limit = 60

[model]
name = "small_cnn"
width = 4
hidden = 16

[training]
epochs = 2
batch_size = 32

[execution]
workers = 0           # in this process: these tests are about specs and tables, not executors

[[sets]]
label = "none"
regularizers = []

[[sets]]
label = "l2 + dropout"
regularizers = [{ name = "l2", weight = 1e-3 }, { name = "dropout", p = 0.25 }]
reference = { train_loss = 1.5, val_loss = 2.0 }
"""
