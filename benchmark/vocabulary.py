"""The words of a spec that the reports read too: what a claim may say, the metrics every run
has, the rule of a spec's name.

The spec validates them when it loads (:class:`regsuite.spec.Claim`, :class:`regsuite.spec.Spec`);
the reports use them on what they read back from a store (:mod:`regsuite.claims` judges claims,
:mod:`regsuite.safety` checks spec names before they become paths). Both take them from here, so
that the core never imports a report module and a report never imports the spec (and with it
torch, which ``regsuite leaderboard`` does not need). This module imports nothing of regsuite.
"""
from __future__ import annotations

from typing import Any, Mapping

#: A spec's ``name``: it becomes file names (``leaderboard/<name>.md``, ``<results>/plots/<name>/``).
SPEC_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SPEC_NAME_MAX_LENGTH = 80

#: The comparison keys of a claim: exactly one per claim.
FORMS = ("lower_than", "higher_than", "lowest_of", "highest_of", "below", "above")
#: The forms that claim the row is lower (the others: higher).
LOWER_FORMS = ("lower_than", "lowest_of", "below")
#: ``row = "all"``, ``lowest_of = "all"``: every set of the spec.
ALL = "all"

#: Metrics every run has (beside the task's own, as "<split>_<key>").
RUN_METRICS = (
    "train_loss", "val_loss", "gap", "train_penalty", "best_epoch", "best_val_loss", "val_rise",
    "gap_at_best", "epochs_run", "wall_time",
)


def referenced_labels(claim: Mapping[str, Any]) -> list[str]:
    """Every set label a claim names (``"all"`` aside), for validation."""
    names: list[str] = []
    for key in ("row", "lower_than", "higher_than", "lowest_of", "highest_of"):
        value = claim.get(key)
        if value is None or value == ALL:
            continue
        names += [value] if isinstance(value, str) else list(value)
    return names
