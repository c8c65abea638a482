"""The run directories a paper report reads: their suite (``run.json``) and results.

A run is recognised by its suite's name (:data:`STUDIES`), never by its folder. The
catalogue's datasets are mapped to the paper dataset each one is, samples, re-renders or
stands in for, so that a claim can tell a real subset from a stand-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lfxbench.errors import LfxbenchError
from lfxbench.report.results import load_results, read_run_suite

# suite name in run.json -> the study it runs (each full suite and its CPU sibling).
STUDIES = {
    "paper": "paper",
    "paper_smoke": "paper",
    "pretext": "pretext",
    "pretext_smoke": "pretext",
    "vae": "vae",
    "vae_smoke": "vae",
    "roar": "roar",
    "roar_smoke": "roar",
}

# Our catalogue's datasets: the paper dataset each one is, samples, re-renders or replaces.
PAPER_DATASETS = {
    "mnist": "MNIST",
    "ecg5000": "ECG5000",
    "cifar10": "CIFAR-10",
    "dsprites": "dSprites",
}
SUBSETS = {"mnist_5k": "mnist"}  # real images, fewer of them
RERENDERED = {"dsprites_procedural": "dsprites"}  # the same six factors, drawn offline
STAND_INS = {"ecg_procedural": "ecg5000", "natural_images_standin": "cifar10"}  # not the data


class Missing(Exception):
    """A claim's model, method or metric is absent from the run: not comparable."""


@dataclass(frozen=True)
class Run:
    """One run directory of a paper suite: its suite (from run.json) and its results."""

    path: Path
    suite: dict[str, Any]
    results: pd.DataFrame

    @property
    def name(self) -> str:
        return self.suite["name"]

    @property
    def study(self) -> str:
        return STUDIES[self.name]

    @property
    def seeds(self) -> list[int]:
        return list(self.suite.get("seeds", []))

    def model(self, model_id: str) -> dict[str, Any]:
        for model in self.suite.get("models", []):
            if model["id"] == model_id:
                return model
        raise Missing(f"model {model_id} not in run {self.name}")

    def dataset_of(self, model_id: str) -> dict[str, Any]:
        dataset_id = self.model(model_id)["dataset"]
        return next(d for d in self.suite["datasets"] if d["id"] == dataset_id)

    def examples_of(self, model_id: str) -> dict[str, Any]:
        """The model's example protocol: its own ``examples``, else the suite's."""
        return self.model(model_id).get("examples") or self.suite.get("examples") or {}

    def method_param(self, method_id: str, name: str) -> Any:
        for method in self.suite.get("methods", []):
            if method["id"] == method_id:
                return method.get("params", {}).get(name)
        return None

    def family(self, paper_dataset: str) -> list[str]:
        """The model ids trained on (a subset, re-rendering or stand-in of) a paper dataset."""
        return [
            model["id"]
            for model in self.suite.get("models", [])
            if _paper_dataset(self.dataset_of(model["id"])["name"]) == paper_dataset
        ]

    def single(self, model: str, method: str, metric: str) -> pd.DataFrame:
        frame = self.results
        rows = frame[
            frame["model"].eq(model)
            & frame["method"].eq(method)
            & frame["metric"].eq(metric)
            & frame["model_b"].eq("")
        ]
        if rows.empty:
            self.model(model)  # names the model if it is the one missing
            raise Missing(f"no {metric} of {method} on {model} in run {self.name}")
        return rows

    def values(self, model: str, method: str, metric: str, column: str = "value") -> pd.Series:
        """Per-seed values of one cell (index: seed)."""
        rows = self.single(model, method, metric)
        if column not in rows or rows[column].isna().all():
            raise Missing(f"{metric} of {method} on {model} has no {column} in run {self.name}")
        return rows.groupby("seed")[column].mean()

    def pair_values(self, method: str, first: str, second: str, metric: str) -> pd.Series:
        """Per-seed values of a pairwise metric between two models (either order)."""
        frame = self.results
        forward = frame["model"].eq(first) & frame["model_b"].eq(second)
        backward = frame["model"].eq(second) & frame["model_b"].eq(first)
        rows = frame[
            (forward | backward)
            & frame["method"].eq(method)
            & frame["method_b"].isin([method, ""])
            & frame["metric"].eq(metric)
        ]
        if rows.empty:
            self.model(first)
            self.model(second)
            raise Missing(f"no {metric} of {method} between {first} and {second} in {self.name}")
        return rows.groupby("seed")["value"].mean()


def _paper_dataset(name: str) -> str | None:
    if name in PAPER_DATASETS:
        return name
    return SUBSETS.get(name) or RERENDERED.get(name) or STAND_INS.get(name)


def load_run(path: Path) -> Run:
    path = Path(path)
    if not path.exists():
        raise LfxbenchError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise LfxbenchError(f"{path} is not a directory; give run directories of `lfxbench run`")
    run_file = path / "run.json"
    if not run_file.is_file():
        raise LfxbenchError(f"{path} holds no run.json; is it a run directory of `lfxbench run`?")
    results = load_results(path)
    suite = read_run_suite(path)
    if suite.get("name") not in STUDIES:
        raise LfxbenchError(
            f"{path} is a run of suite {suite.get('name')!r}, none of the paper's suites "
            f"({', '.join(STUDIES)})"
        )
    return Run(path, suite, results)


def load_runs(paths: Sequence[Path]) -> dict[str, Run]:
    """The given run directories by study; two runs of one study are an error."""
    runs: dict[str, Run] = {}
    for path in paths:
        run = load_run(path)
        if run.study in runs:
            raise LfxbenchError(
                f"two runs of the {run.study} study: {runs[run.study].path} and {path}; give one"
            )
        runs[run.study] = run
    return runs
