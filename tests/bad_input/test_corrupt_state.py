"""Unusable state on disk: corrupt cells and cache entries are warned about and recomputed,
cells of other data are never reused, files honour the umask, and a write the system
refuses is a one-paragraph error (exit 2) naming the path, with nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from suite_runs import run

from lfxbench.cli import main
from lfxbench.datasets.mnist import MNIST_FILES
from lfxbench.errors import LfxbenchError
from lfxbench.storage import (
    Cache,
    CorruptFileWarning,
    atomic_write_text,
    attribution_problem,
    read_cell,
    state_dict_problem,
)

# 3 methods x 2 seeds of one small autoencoder: six cells, two models, six attributions.
SMALL = """\
name: small
device: cpu
seeds: [0, 1]
batch_size: 16
datasets:
  - {dataset}
models:
  - id: ae
    name: mnist_autoencoder
    dataset: {dataset_id}
    recipe: {{epochs: 1, batch_size: 50, patience: 1}}
methods:
  - saliency
  - random
  - name: integrated_gradients
    params: {{n_steps: 4}}
metrics:
  - name: latent_shift
    params: {{fractions: [0.5, 1.0]}}
"""
EMBEDDED = "{name: mnist_5k, params: {n_train: 200, n_test: 24}}"


def write_suite(folder: Path, dataset: str = EMBEDDED, dataset_id: str = "mnist_5k") -> Path:
    path = folder / "small.yaml"
    path.write_text(SMALL.format(dataset=dataset, dataset_id=dataset_id))
    return path


def results_of(tmp_path: Path, run_name: str = "small") -> pd.DataFrame:
    return pd.read_csv(tmp_path / "runs" / run_name / "results.csv")


def corrupt_messages(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CorruptFileWarning)]


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tmp"))


@pytest.fixture
def small_suite(tmp_path: Path) -> Path:
    return write_suite(tmp_path)


# -- corrupt cells -------------------------------------------------------------------------


def test_read_cell_trusts_only_complete_records_of_its_own_cell(tmp_path):
    record = {
        "suite": "s",
        "model": "ae",
        "dataset": "d",
        "method": "m",
        "metric": "x",
        "seed": 0,
        "value": 0.5,
        "direction": "higher",
        "cell_key": "abc",
        "curve": [[0.5, 1.0]],
        "curve_axes": ["x", "y"],
        "details": {},
    }
    path = tmp_path / "abc.json"
    path.write_text(json.dumps(record))
    assert read_cell(path, "abc") == record
    assert read_cell(tmp_path / "absent.json", "absent") is None  # absent: no warning
    for text, problem in (
        (json.dumps(record)[:40], "not a readable cell record"),
        ("[]", "JSON list"),
        (json.dumps({k: v for k, v in record.items() if k != "value"}), "'value'"),
        (json.dumps(record | {"value": "0.5"}), "'value'"),
        (json.dumps(record | {"seed": True}), "'seed'"),
        (json.dumps(record | {"cell_key": "other"}), "cell 'other'"),
        (json.dumps(record | {"curve": [[1.0]]}), "'curve'"),
    ):
        path.write_text(text)
        with pytest.warns(CorruptFileWarning, match=problem) as caught:
            assert read_cell(path, "abc") is None
        assert str(path) in str(caught[0].message)


@pytest.mark.slow
def test_corrupt_cell_files_are_warned_about_and_recomputed(small_suite, tmp_path, capsys):
    assert run(small_suite, tmp_path) == 0
    before = results_of(tmp_path)
    cells = sorted((tmp_path / "runs" / "small" / "cells").glob("*.json"))
    truncated, no_value, mistyped, other_key, not_a_record, intact = cells
    truncated.write_text(truncated.read_text()[:60])
    for path, edit in (
        (no_value, lambda record: record.pop("value")),
        (mistyped, lambda record: record.update(value=str(record["value"]))),
        (other_key, lambda record: record.update(cell_key=intact.stem)),
    ):
        record = json.loads(path.read_text())
        edit(record)
        path.write_text(json.dumps(record))
    not_a_record.write_text("[1, 2]")
    intact_written = intact.stat().st_mtime_ns
    capsys.readouterr()

    with pytest.warns(CorruptFileWarning) as caught:
        assert run(small_suite, tmp_path) == 0
    messages = corrupt_messages(caught)
    for path in cells[:-1]:
        assert any(str(path) in message for message in messages), path
        assert read_cell(path, path.stem) is not None  # rewritten whole
    assert intact.stat().st_mtime_ns == intact_written
    assert "Traceback" not in capsys.readouterr().err
    after = results_of(tmp_path)
    pd.testing.assert_series_equal(after["value"], before["value"], check_exact=True)
    pd.testing.assert_series_equal(after["cell_key"], before["cell_key"])
    # Recomputed from the cached attributions, with the calibrations timed around them.
    assert before["calibration_after_seconds"].gt(0).all()
    for column in ("calibration_seconds", "calibration_after_seconds"):
        pd.testing.assert_series_equal(after[column], before[column])


# -- corrupt cache entries -----------------------------------------------------------------


def test_state_dict_problem_names_keys_shapes_and_dtypes():
    model = torch.nn.Linear(3, 2)
    good = model.state_dict()
    assert state_dict_problem(good, model) is None
    assert "not a mapping" in state_dict_problem(None, model)
    assert "missing: ['bias']" in state_dict_problem({"weight": good["weight"]}, model)
    assert "unexpected: ['extra']" in state_dict_problem(good | {"extra": good["bias"]}, model)
    assert "shape [3, 2]" in state_dict_problem(good | {"weight": torch.zeros(3, 2)}, model)
    assert "torch.float64" in state_dict_problem(good | {"bias": good["bias"].double()}, model)


def test_attribution_problem_checks_the_shape_each_kind_of_method_gives():
    inputs = (4, 1, 28, 28)

    def problem(values, kind="feature", n_corpus=None, **extra):
        return attribution_problem(
            {"values": values, "seconds": 0.1, **extra}, kind, inputs, n_corpus
        )

    assert problem(torch.zeros(inputs)) is None
    assert "[3, 1, 28, 28]" in problem(torch.zeros(3, 1, 28, 28))
    assert "not floating-point" in problem(torch.zeros(inputs, dtype=torch.long))
    assert "not floating-point" in problem(None)
    assert problem(torch.zeros(4, 6, 1, 28, 28), "unit") is None
    assert "d_H" in problem(torch.zeros(4, 6, 28, 28), "unit")
    assert problem(torch.zeros(4, 10), "example", 10) is None
    assert "[4, 10]" in problem(torch.zeros(4, 9), "example", 10)
    assert "'seconds'" in attribution_problem(
        {"values": torch.zeros(inputs)}, "feature", inputs, None
    )
    assert "'calibration_after_seconds'" in problem(
        torch.zeros(inputs), calibration_after_seconds="x"
    )


@pytest.mark.slow
def test_corrupt_cache_entries_are_warned_about_and_recomputed(small_suite, tmp_path, capsys):
    assert run(small_suite, tmp_path) == 0
    before = results_of(tmp_path)
    cache = tmp_path / "cache"
    wrong_shape, wrong_dtype = sorted((cache / "models").glob("*.pt"))
    for path, edit in (
        (wrong_shape, lambda weights, name: weights[name][:-1]),
        (wrong_dtype, lambda weights, name: weights[name].double()),
    ):
        payload = torch.load(path, weights_only=True)
        name = next(iter(payload["state_dict"]))
        payload["state_dict"][name] = edit(payload["state_dict"], name)
        torch.save(payload, path)
    truncated, fewer, no_values, *_ = sorted((cache / "attributions").glob("*.pt"))
    truncated.write_bytes(truncated.read_bytes()[:100])
    payload = torch.load(fewer, weights_only=True)
    torch.save(payload | {"values": payload["values"][:-1]}, fewer)
    torch.save({"seconds": 1.0}, no_values)
    capsys.readouterr()

    # A new run directory over the damaged caches: every cell reads them.
    with pytest.warns(CorruptFileWarning) as caught:
        assert run(small_suite, tmp_path, "--run-name", "again") == 0
    messages = corrupt_messages(caught)
    for path in (wrong_shape, wrong_dtype, truncated, fewer, no_values):
        assert any(str(path) in message for message in messages), path
    assert "Traceback" not in capsys.readouterr().err
    after = results_of(tmp_path, "again")
    pd.testing.assert_series_equal(after["value"], before["value"], check_exact=True)
    for path in sorted(cache.rglob("*.pt")):  # each rewritten whole
        assert isinstance(torch.load(path, weights_only=True), dict), path


def test_a_cache_file_that_is_no_mapping_is_treated_as_absent(tmp_path):
    cache = Cache(tmp_path)
    cache.save("models", "k", [1, 2])
    with pytest.warns(CorruptFileWarning, match="not a mapping"):
        assert cache.load("models", "k") is None
    assert cache.load("models", "absent") is None


# -- the data's fingerprint in every key -----------------------------------------------------


def write_fake_mnist(data_dir: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (60, 28, 28)),
        "train_labels": np.arange(60) % 10,
        "test_images": rng.integers(0, 256, (20, 28, 28)),
        "test_labels": np.arange(20) % 10,
    }
    (data_dir / "mnist").mkdir(parents=True)
    for key, stem in MNIST_FILES.items():
        array = arrays[key]
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
        header += b"".join(struct.pack(">I", size) for size in array.shape)
        (data_dir / "mnist" / stem).write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.slow
def test_other_data_in_another_data_dir_recomputes_the_cells(tmp_path):
    suite = write_suite(tmp_path, "{name: mnist, id: digits}", "digits")
    for folder, seed in (("a", 1), ("b", 2)):
        write_fake_mnist(tmp_path / folder, seed)
    cells = tmp_path / "runs" / "small" / "cells"

    assert run(suite, tmp_path, "--data-dir", str(tmp_path / "a")) == 0
    first, written = results_of(tmp_path), {p: p.stat().st_mtime_ns for p in cells.iterdir()}
    assert run(suite, tmp_path, "--data-dir", str(tmp_path / "b")) == 0
    second = results_of(tmp_path)
    assert len(second) == len(first) == 6
    assert set(second["cell_key"]).isdisjoint(first["cell_key"])  # recomputed, not reused
    assert (second["value"] != first["value"]).all()
    assert {p.stem for p in cells.iterdir()} == set(first["cell_key"]) | set(second["cell_key"])

    # Back to the first data: its cells are found again, nothing recomputed.
    assert run(suite, tmp_path, "--data-dir", str(tmp_path / "a")) == 0
    pd.testing.assert_series_equal(results_of(tmp_path)["value"], first["value"])
    assert all(path.stat().st_mtime_ns == written[path] for path in written)


# -- file modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "board" / "leaderboard.html", "<table>")
        Cache(tmp_path / "cache").save("models", "key", {"seconds": 1.0})
    finally:
        os.umask(previous)
    for path in (tmp_path / "board" / "leaderboard.html", tmp_path / "cache" / "models" / "key.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert not leftovers(tmp_path)


# -- writes the system refuses ----------------------------------------------------------------


def test_a_full_disk_is_an_error_naming_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "cells" / "abc.json"
    atomic_write_text(path, "finished\n")

    def full_disk(handle: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(LfxbenchError) as raised:
        atomic_write_text(path, "half")
    assert str(raised.value) == f"cannot write {path}: [Errno 28] No space left on device"
    assert path.read_text() == "finished\n"
    assert sorted(path.parent.iterdir()) == [path]  # the temporary file is gone


def _fails_cleanly(capsys, *arguments: str) -> str:
    capsys.readouterr()
    assert main(["run", *arguments, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lfxbench: error: ") and "Traceback" not in err
    return err


def test_out_given_a_regular_file_exits_2_naming_it(small_suite, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("not a folder\n")
    err = _fails_cleanly(
        capsys, str(small_suite), "--out", str(out), "--cache-dir", str(tmp_path / "cache")
    )
    assert str(out) in err and "is a file, not a folder" in err
    assert out.read_text() == "not a folder\n"
    assert not (tmp_path / "cache").exists()  # it failed before any work
    assert not leftovers(tmp_path)


def test_a_run_directory_that_cannot_hold_cells_fails_before_any_work(
    small_suite, tmp_path, capsys
):
    cells = tmp_path / "runs" / "small" / "cells"
    cells.parent.mkdir(parents=True)
    cells.write_text("")
    err = _fails_cleanly(
        capsys,
        str(small_suite),
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert f"cannot create {cells}" in err and f"({cells} is a file, not a folder)" in err
    assert not (tmp_path / "cache").exists()  # nothing trained
    assert not leftovers(tmp_path)


def test_a_cache_folder_that_is_a_file_exits_2_naming_it(small_suite, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "models").write_text("")
    err = _fails_cleanly(
        capsys, str(small_suite), "--out", str(tmp_path / "runs"), "--cache-dir", str(cache)
    )
    assert f"cannot write {cache / 'models'}" in err and "File exists" in err
    assert not leftovers(tmp_path)
    assert not list((tmp_path / "runs" / "small").rglob("*.json"))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file modes")
def test_a_read_only_cache_exits_2_naming_it(small_suite, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    try:
        err = _fails_cleanly(
            capsys, str(small_suite), "--out", str(tmp_path / "runs"), "--cache-dir", str(cache)
        )
    finally:
        cache.chmod(0o700)
    assert str(cache) in err  # the command line's own check may name it first
    assert not leftovers(tmp_path)
    assert not list(cache.rglob("*"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ('suite,model\n"tiny,ae\n', "is not a well-formed CSV"),
        ("suite,model\ntiny,ae\n", "lacks the columns method, metric, seed, value"),
    ],
)
def test_a_damaged_results_table_exits_2_naming_it(tmp_path, capsys, text, problem):
    (tmp_path / "results.csv").write_text(text)
    assert main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "results.csv") in err and problem in err and "rerun" in err
    assert "Traceback" not in err
