"""Bad inputs to `lfxbench compare`: exit 2 with one error naming the file, never a traceback.

Each case breaks one side (the candidate) and keeps the baseline a valid results CSV.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_compare import BASE, results

from lfxbench.cli import main


def csv_text(text: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / "cand.csv").write_text(text, encoding="utf-8")
        return folder / "cand.csv"

    return write


def csv_bytes(data: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / "cand.csv").write_bytes(data)
        return folder / "cand.csv"

    return write


def edited_results(edit: Callable) -> Callable[[Path], Path]:
    """A results CSV of ``BASE`` as ``edit(frame)`` returns it."""

    def write(folder: Path) -> Path:
        edit(results(BASE)).to_csv(folder / "cand.csv", index=False)
        return folder / "cand.csv"

    return write


def run_dir(run_json: str | None, with_results: bool = True) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        run = folder / "run"
        run.mkdir()
        if with_results:
            results(BASE).to_csv(run / "results.csv", index=False)
        if run_json is not None:
            (run / "run.json").write_text(run_json)
        return run / ("run.json" if run_json is not None else "")

    return write


def set_cell(row: int, column: str, value) -> Callable:
    def edit(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


CASES = {
    "zero-byte CSV": (csv_bytes(b""), "is empty"),
    "binary file": (csv_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "is not UTF-8"),
    "latin-1 text": (csv_bytes("model,value\nrésumé,1\n".encode("latin-1")), "is not UTF-8"),
    "NUL bytes": (csv_bytes(b"\x00" * 64), "has neither a `value` column"),
    "ragged rows": (csv_text("a,b\n1,2\n1,2,3,4,5\n"), "is not a well-formed CSV"),
    "unrelated columns": (csv_text("name,score\nx,1\n"), "has neither a `value` column"),
    "results lacking columns": (
        edited_results(lambda frame: frame.drop(columns=["direction"])),
        "lacks the column(s) direction",
    ),
    "leaderboard lacking std": (csv_text("model,mean\nae,1\n"), "lacks the column(s) dataset"),
    "header only": (csv_text(",".join(results(BASE).columns) + "\n"), "has a header but no rows"),
    "value not numeric": (
        edited_results(set_cell(3, "value", "0.8 (approx)")),
        "line 5: value should be a number, not '0.8 (approx)'",
    ),
    "seconds not numeric": (
        edited_results(set_cell(0, "attribution_seconds", "fast")),
        "line 2: attribution_seconds should be a number, not 'fast'",
    ),
    "unknown direction": (
        edited_results(set_cell(1, "direction", "up")),
        "line 3: direction should be higher or lower, not 'up'",
    ),
    "a seed twice": (
        edited_results(set_cell(1, "seed", 0)),
        "line 3: repeats the model, dataset, method, metric, seed",
    ),
    "no method": (
        edited_results(set_cell(2, "method", None)),
        "line 4: one of model, dataset, method, metric, seed is empty",
    ),
    "directory without results.csv": (
        run_dir(None, with_results=False),
        "is a directory without a results.csv",
    ),
    "run.json not JSON": (run_dir("{not json"), "is not a run.json"),
    "run.json not an object": (run_dir("[1, 2]"), "is not a run.json"),
    "run.json bad compare settings": (
        run_dir(json.dumps({"suite": {"compare": {"runtime_threshold": 0.5}}})),
        "is not a run.json",
    ),
    "no such file": (lambda folder: folder / "missing.csv", "does not exist"),
}


@pytest.mark.parametrize("case", CASES)
def test_compare_rejects_a_bad_candidate_naming_it(tmp_path, capsys, case):
    write, message = CASES[case]
    named = write(tmp_path)  # the file the error must name
    results(BASE).to_csv(tmp_path / "base.csv", index=False)
    candidate = named.parent if named.name == "run.json" else named
    assert main(["compare", str(tmp_path / "base.csv"), str(candidate)]) == 2
    captured = capsys.readouterr()
    first_line = captured.err.splitlines()[0]
    assert first_line.startswith("lfxbench: error:") and str(named) in first_line
    assert message in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_a_bad_baseline_is_named_too(tmp_path, capsys):
    (tmp_path / "base.csv").write_bytes(b"")
    results(BASE).to_csv(tmp_path / "cand.csv", index=False)
    assert main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "cand.csv")]) == 2
    first_line = capsys.readouterr().err.splitlines()[0]
    assert first_line.startswith("lfxbench: error:") and str(tmp_path / "base.csv") in first_line


def test_an_invalid_tolerance_flag_is_named(tmp_path, capsys):
    results(BASE).to_csv(tmp_path / "base.csv", index=False)
    flags = ["--runtime-threshold", "0.5"]
    assert main(["compare", str(tmp_path / "base.csv"), str(tmp_path / "base.csv"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lfxbench: error: compare: --runtime-threshold: Input should be greater")
