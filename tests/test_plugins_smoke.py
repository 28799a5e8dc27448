"""Every registered plugin through the plugin author's kit (:mod:`regsuite.testing`): a new
plugin is tested without a new test (it only needs good ``smoke_params``)."""
from __future__ import annotations

import pytest

from regsuite.registry import KINDS
from regsuite.testing import check_plugin, plugin_classes

PLUGINS = [pytest.param(cls, id=f"{kind}:{cls.name}") for kind in KINDS for cls in plugin_classes(kind)]


@pytest.mark.parametrize("cls", PLUGINS)
def test_plugin_passes_the_authors_kit(cls, tmp_path):
    check_plugin(cls, tmp_path)
