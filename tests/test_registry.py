from __future__ import annotations

import importlib.metadata
import textwrap

import pytest

from lfxbench.errors import LfxbenchError, UnknownNameError
from lfxbench.registry import (
    ENTRY_POINT_GROUP,
    METHODS,
    Registry,
    load_entry_point_plugins,
    load_plugin,
)


def test_decorator_registers_with_first_docstring_line():
    registry: Registry[object] = Registry("widget")

    @registry.register("spinner")
    class Spinner:
        """Spins.

        More text that is not the description.
        """

    assert registry.get("spinner") is Spinner
    assert [(e.name, e.description) for e in registry] == [("spinner", "Spins.")]


def test_unknown_name_suggests_closest_and_lists_known():
    with pytest.raises(UnknownNameError) as error:
        METHODS.get("integrated_gradient")
    message = str(error.value)
    assert "did you mean 'integrated_gradients'" in message
    assert "saliency" in message  # the known names are listed too


def test_two_implementations_cannot_share_a_name():
    registry: Registry[object] = Registry("widget")
    registry.register("a")(type("A", (), {}))
    with pytest.raises(LfxbenchError, match="already registered"):
        registry.register("a")(type("B", (), {}))


def test_plugin_module_by_dotted_name(tmp_path, monkeypatch):
    (tmp_path / "my_lab_methods.py").write_text(
        textwrap.dedent('''
        from lfxbench import FeatureMethod, register_method

        @register_method("lab_zero")
        class Zero(FeatureMethod):
            """All zeros."""
            def attribute(self, inputs, baselines):
                return inputs * 0
    ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugin("my_lab_methods")
    assert "lab_zero" in METHODS
    with pytest.raises(LfxbenchError, match="cannot be imported"):
        load_plugin("no_such_module_anywhere")


def test_entry_point_group_loads_installed_plugins(tmp_path, monkeypatch):
    (tmp_path / "installed_plugin.py").write_text(
        textwrap.dedent('''
        from lfxbench import FeatureMethod, register_method

        @register_method("from_entry_point")
        class FromEntryPoint(FeatureMethod):
            """Registered by an entry point."""
            def attribute(self, inputs, baselines):
                return inputs
    ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = importlib.metadata.EntryPoint(
        name="lab", value="installed_plugin", group=ENTRY_POINT_GROUP
    )

    def entry_points(group=None):
        return [entry_point] if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    load_entry_point_plugins()
    assert "from_entry_point" in METHODS


def test_missing_plugin_file_is_a_clear_error(tmp_path):
    with pytest.raises(LfxbenchError, match="does not exist"):
        load_plugin("nowhere.py", tmp_path)


def test_a_registered_class_must_subclass_its_base_and_declare_its_metadata():
    from lfxbench.metrics.base import Metric
    from lfxbench.registry import METRICS

    class NotAMetric:
        """Scores nothing."""

    with pytest.raises(LfxbenchError, match="must be a subclass of Metric or PairwiseMetric"):
        METRICS.register("not_a_metric")(NotAMetric)

    class Undirected(Metric):
        """Forgets to say whether higher is better."""

        def evaluate(self, context):
            raise AssertionError("never run")

    with pytest.raises(LfxbenchError, match=r"Undirected\.direction is '\(not set\)'; declare"):
        METRICS.register("undirected")(Undirected)
    assert "not_a_metric" not in METRICS and "undirected" not in METRICS
