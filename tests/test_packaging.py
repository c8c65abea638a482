"""What a user meets before any suite runs: the version, `python -m`, the shipped suites by
name, `--set` overrides, and a command line (listings too) that starts without the numeric
stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lfxbench
from lfxbench.cli import main
from lfxbench.registry import REGISTRIES, load_builtins
from lfxbench.suite_yaml import shipped_suites


def test_the_version_is_the_installed_one(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"lfxbench {lfxbench.__version__}"
    assert lfxbench.__version__[0].isdigit()


def outside_the_source_tree(tmp_path, *argv: str) -> subprocess.CompletedProcess:
    """``python argv`` in an empty folder: the installed package, never a source tree's
    ``lfxbench/`` (which lacks the methods and metrics an install maps into it)."""
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, check=True, cwd=tmp_path
    )


def test_python_dash_m_is_the_command_line(tmp_path):
    shown = outside_the_source_tree(tmp_path, "-m", "lfxbench", "--version")
    assert shown.stdout.strip() == f"lfxbench {lfxbench.__version__}"


def test_the_command_line_starts_without_torch_or_pandas(tmp_path):
    code = (
        "import sys, lfxbench.cli; print(sorted({'torch', 'pandas', 'captum'} & set(sys.modules)))"
    )
    loaded = outside_the_source_tree(tmp_path, "-c", code)
    assert loaded.stdout.strip() == "[]"


def test_listing_reads_the_sources_without_torch_and_lists_what_the_registry_holds(tmp_path):
    code = (
        "import json, sys; from lfxbench.registry import REGISTRIES, catalogue; "
        "rows = {kind: catalogue(kind) for kind in REGISTRIES}; "
        "print(json.dumps([rows, sorted({'torch', 'pandas'} & set(sys.modules))]))"
    )
    shown = outside_the_source_tree(tmp_path, "-c", code)
    read, loaded = json.loads(shown.stdout)
    assert loaded == []
    load_builtins()  # the registries themselves, every built-in imported
    for kind, registry in REGISTRIES.items():
        # Plugins that tests before this one loaded into this process are not built-ins.
        builtins = [entry for entry in registry if entry.target.__module__.startswith("lfxbench.")]
        assert [tuple(row) for row in read[kind]] == [
            (entry.name, entry.description) for entry in builtins
        ]


def test_shipped_suites_are_listed_and_run_by_name(tmp_path, capsys, monkeypatch):
    assert {"smoke", "ci", "paper"} <= set(shipped_suites())
    assert main(["list", "suites"]) == 0
    listing = capsys.readouterr().out
    assert "smoke" in listing and "embedded MNIST 5k subset" in listing
    monkeypatch.chdir(tmp_path)  # no suites/ folder here
    assert main(["validate", "smoke"]) == 0
    assert capsys.readouterr().out.startswith("smoke: valid; 20 cells")


def test_an_unknown_suite_name_lists_the_shipped_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "smok"]) == 2
    err = capsys.readouterr().err
    assert "'smok' is neither a file nor a shipped suite" in err and "smoke" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seeds=[-1]", "seeds[0]: Input should be greater than or equal to 0"),
        ("models.3.recipe.epochs=2", "models is a list of 1: '3' is not an index in it"),
        ("name", "expected dotted.path=value"),
        ("methods.0.name=[unclosed", "line 1, column"),
    ],
)
def test_a_bad_override_is_refused_naming_it(tmp_path, capsys, setting, message):
    out = tmp_path / "out"
    assert main(["run", "smoke", "--set", setting, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--set {setting}" in err and message in err and "Traceback" not in err
    assert not out.exists()


def test_overrides_reach_the_validated_suite():
    from lfxbench.suite import load_suite

    suite = load_suite(
        shipped_suites()["smoke"], ("seeds=[3]", "models.0.recipe.epochs=2", "examples.n_test=7")
    )
    assert suite.seeds == [3] and suite.models[0].recipe.epochs == 2
    assert suite.examples.n_test == 7
    assert suite.overrides == ("seeds=[3]", "models.0.recipe.epochs=2", "examples.n_test=7")


@pytest.mark.parametrize(("flags", "level"), [([], "INFO"), (["-v"], "DEBUG"), (["-q"], "WARNING")])
def test_log_levels(flags, level, monkeypatch):
    import logging

    seen = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: seen.update(kwargs))
    assert main([*flags, "list", "suites"]) == 0
    assert logging.getLevelName(seen["level"]) == level
