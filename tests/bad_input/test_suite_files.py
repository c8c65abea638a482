"""Malformed suites, plugins and command lines: exit 2, the file and field named in the
first line, no traceback, nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lfxbench import cli
from lfxbench.cli import main

DATA = Path(__file__).parents[1] / "data"
TINY = (DATA / "tiny.yaml").read_text()


def replaced(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return mutate


def appended(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def billion_laughs(text: str) -> str:
    levels = ["x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    levels += [f"x-l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(levels) + "\n" + text.replace("name: tiny", "name: tiny\ndescription: *l8")


SUITE_CASES = {
    # paths built from suite content
    "suite name climbing out": (
        replaced("name: tiny", "name: ../../escaped"),
        "name",
        "cannot be used",
    ),
    "empty suite name": (replaced("name: tiny", "name: ''"), "name", "cannot be used"),
    "metric id with a slash": (
        replaced("  - name: latent_shift\n", "  - name: latent_shift\n    id: ../figures/x\n"),
        "metrics[0].id",
        "cannot be used",
    ),
    "trend with a slash": (appended("trends: [a/b]\n"), "trends[0]", "cannot be used"),
    # the file itself
    "key given twice": (
        appended("methods: [saliency]\n"),
        "(yaml)",
        "key 'methods' is given twice",
    ),
    "deep nesting": (
        appended("description: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        "(yaml)",
        "nested deeper than 50 levels",
    ),
    "alias bomb": (billion_laughs, "(top level)", "more than 200,000 values"),
    "integer beyond 64 bits": (
        replaced(
            "{n_train: 200, n_test: 24}",
            "{n_train: 200, n_test: 24, split_seed: 1" + "0" * 25 + "}",
        ),
        "datasets[0].params.split_seed",
        "does not fit in a 64-bit integer",
    ),
    # sizes and values
    "seed 1e29": (replaced("seeds: [0, 1]", "seeds: [1.0e+29]"), "seeds[0]", "as an integer"),
    "zero steps": (
        replaced("n_steps: 8", "n_steps: 0"),
        "methods[1].params.n_steps",
        "greater than or equal to 1",
    ),
    "10**12 steps": (
        replaced("n_steps: 8", "n_steps: 1000000000000"),
        "methods[1].params.n_steps",
        "less than or equal to 10000",
    ),
    "NaN parameter": (
        replaced("power: 2.0", "power: .nan"),
        "methods[2].params.power",
        "finite number",
    ),
    "huge batch": (replaced("batch_size: 16", "batch_size: 100000000"), "batch_size", "less than"),
    # applicability
    "pointing game without masks": (
        replaced("metrics:\n", "metrics:\n  - pointing_game\n"),
        "metrics[0]",
        "needs ground-truth object masks, and dataset 'mnist_5k'",
    ),
}


def suite_file(tmp_path: Path, text: str | bytes, name: str = "suite.yaml") -> Path:
    shutil.copy(DATA / "user_plugin.py", tmp_path / "user_plugin.py")
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def run_refused(tmp_path: Path, suite: Path, capsys, *flags: str) -> str:
    """``lfxbench run`` on a bad suite: exit 2, nothing written; returns the first line."""
    before = files_under(tmp_path)
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = main(
        ["run", str(suite), "--out", str(out), "--cache-dir", str(cache), "--quiet", *flags]
    )
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "Traceback" not in captured.out + captured.err
    assert files_under(tmp_path) == before, "a refused run wrote files"
    first = captured.err.splitlines()[0]
    assert first.startswith(f"lfxbench: error: {suite}")
    return first


@pytest.mark.parametrize("case", SUITE_CASES, ids=list(SUITE_CASES))
def test_a_malformed_suite_is_refused_naming_the_file_and_field(tmp_path, capsys, case):
    mutate, field, message = SUITE_CASES[case]
    first = run_refused(tmp_path, suite_file(tmp_path, mutate(TINY)), capsys)
    assert f": {field}: " in first and message in first, first


def test_a_suite_that_is_not_utf8_names_the_byte_and_line(tmp_path, capsys):
    suite = suite_file(tmp_path, TINY.encode() + b"description: caf\xe9\n")
    first = run_refused(tmp_path, suite, capsys)
    line = TINY.count("\n") + 1
    assert f"(encoding): not UTF-8 text: byte 0xe9 at line {line}, column 17" in first


def test_an_oversized_suite_file_is_refused_before_it_is_parsed(tmp_path, capsys):
    suite = suite_file(tmp_path, TINY + "#" * (4 * 2**20) + "\n")
    assert "(file):" in run_refused(tmp_path, suite, capsys)


def test_dozens_of_problems_are_capped_with_a_count(tmp_path, capsys):
    unknown = "".join(f"unknown_{index}: 1\n" for index in range(60))
    suite = suite_file(tmp_path, TINY + unknown)
    assert main(["validate", str(suite)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 21 and lines[-1].endswith("... and 40 more problems")


def test_unsafe_run_name_is_refused(tmp_path, capsys):
    suite = suite_file(tmp_path, TINY)
    before = files_under(tmp_path)
    code = main(["run", str(suite), "--out", str(tmp_path / "out"), "--run-name", "../up"])
    assert code == 2 and "--run-name '../up' cannot be used" in capsys.readouterr().err
    assert files_under(tmp_path) == before


PLUGIN_CASES = {
    "syntax error": ("broken.py", "def f(:\n    pass\n", "failed to load: line 1: SyntaxError"),
    "raises on import": (
        "raises.py",
        "x = 1\nraise RuntimeError('boom')\n",
        "line 2: RuntimeError: boom",
    ),
    "not a Python file": ("notes.txt", "hello\n", "is not a Python file"),
    "missing file": ("absent.py", None, "does not exist"),
    "module that raises": (
        "raising_module",
        "raise ImportError('needs a GPU library')\n",
        "ImportError",
    ),
}


@pytest.mark.parametrize("case", PLUGIN_CASES, ids=list(PLUGIN_CASES))
def test_a_broken_plugin_is_reported_with_its_file_line_and_error(
    tmp_path, capsys, monkeypatch, case
):
    name, source, message = PLUGIN_CASES[case]
    if source is not None:
        module_file = tmp_path / (name if "." in name else f"{name}.py")
        module_file.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = suite_file(tmp_path, TINY.replace("[user_plugin.py]", f"[{name}]"))
    first = run_refused(tmp_path, suite, capsys)
    assert ": plugins[0]: " in first and message in first, first
    if "." in name:
        assert str(tmp_path / name) in first


@pytest.mark.parametrize("flag", ["--out", "--cache-dir"])
def test_an_output_folder_that_is_a_file_is_refused_before_training(tmp_path, capsys, flag):
    suite = suite_file(tmp_path, TINY)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    flags = {
        "--out": str(tmp_path / "out"),
        "--cache-dir": str(tmp_path / "cache"),
        flag: str(taken),
    }
    before = files_under(tmp_path)
    code = main(["run", str(suite), "--quiet", *[item for pair in flags.items() for item in pair]])
    err = capsys.readouterr().err
    assert code == 2 and f"{flag} '{taken}': '{taken}' is a file, not a folder" in err
    assert files_under(tmp_path) == before and taken.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_training(tmp_path, capsys):
    suite = suite_file(tmp_path, TINY)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code = main(
        ["run", str(suite), "--out", str(locked / "runs"), "--cache-dir", str(tmp_path / "c")]
    )
    assert code == 2 and "is not writable" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(tmp_path):
    suite = suite_file(tmp_path, TINY)
    process = subprocess.Popen(
        [sys.executable, "-m", "lfxbench.cli", "validate", str(suite)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,  # the installed package, not a source tree's
    )
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_running_out_of_memory_is_an_error_that_keeps_the_finished_cells(monkeypatch, capsys):
    def allocate(_args):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 TB")

    monkeypatch.setitem(cli.COMMANDS, "validate", allocate)
    assert main(["validate", "any.yaml"]) == 2
    err = capsys.readouterr().err
    assert "out of memory" in err and "finished cells are kept" in err and "Traceback" not in err
