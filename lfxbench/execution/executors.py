"""Where a runner's pending cells run: ``run_locally`` (in this process) or ``run_on_ray``
(the CLI picks one by name from ``EXECUTORS``).

Ray fans the cells out: one task per model training, per model and seed whose subset
models are retrained ahead of its cells (``Runner.retrain_ahead``), per explanation group
and per pairwise comparison, in four waves (a group needs its model and its retrained
subset models, a pair both explanations). Workers share the cache and run directories,
which every write reaches atomically, and return nothing: the driver reads the finished
cells as a local run does.

``RAY_ADDRESS`` (or ``ray start`` on the machine) selects a cluster; without it Ray starts
a local instance. A task asks for one GPU when the suite runs on CUDA, else as many cores
as the driver's torch threads (and uses that many: the same numbers as a local run, bit
for bit on the same CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lfxbench.cells import Cell, PairCell
from lfxbench.errors import LfxbenchError
from lfxbench.execution import progress
from lfxbench.execution.runner import Runner
from lfxbench.suite import load_suite


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the driver's runner (plugins load with the suite)."""

    suite_path: str
    overrides: tuple[str, ...]
    run_dir: str
    cache_dir: str
    data_dir: str
    device: str
    # The driver's intra-op threads: float reductions split by thread, so a worker with
    # another count would train (slightly) different weights than a local run.
    num_threads: int


_worker_state: dict[WorkerSpec, tuple[Runner, dict]] = {}


def _worker(spec: WorkerSpec) -> tuple[Runner, dict]:
    """The runner of this worker process and its cells by key, built once per process."""
    if spec not in _worker_state:
        torch.set_num_threads(spec.num_threads)
        suite = load_suite(spec.suite_path, spec.overrides)
        runner = Runner(
            suite,
            Path(spec.run_dir),
            Path(spec.cache_dir),
            Path(spec.data_dir),
            device=spec.device,
            progress=False,
        )
        by_key = {cell.key: cell for cell in suite.cells()}
        by_key.update({pair.key: pair for pair in suite.pair_cells()})
        _worker_state[spec] = (runner, by_key)
    return _worker_state[spec]


def _train(spec: WorkerSpec, cell_key: str) -> None:
    runner, cells = _worker(spec)
    runner.models.get(cells[cell_key])


def _retrain_ahead(spec: WorkerSpec, cell_keys: list[str]) -> None:
    runner, cells = _worker(spec)
    runner.retrain_ahead([cells[key] for key in cell_keys])


def _group(spec: WorkerSpec, cell_keys: list[str]) -> None:
    runner, cells = _worker(spec)
    runner.run_group([cells[key] for key in cell_keys])


def _pair(spec: WorkerSpec, pair_key: str) -> None:
    runner, cells = _worker(spec)
    runner.run_pair(cells[pair_key])


def run_locally(runner: Runner, groups: list[list[Cell]], pairs: list[PairCell]) -> None:
    """Every pending group, then every pair, in this process."""
    total = sum(map(len, groups)) + len(pairs)
    with progress.showing(total, runner.suite.name, runner.progress):
        for batch in runner.retraining_batches(groups):
            runner.retrain_ahead(batch)
        for group in groups:
            runner.run_group(group)
        for pair in pairs:
            runner.run_pair(pair)


def run_on_ray(runner: Runner, groups: list[list[Cell]], pairs: list[PairCell]) -> None:
    try:
        import ray
    except ImportError as error:
        raise LfxbenchError(
            "the ray executor needs Ray: pip install 'lfxbench[ray]' (or pip install ray)"
        ) from error
    source = Path(runner.suite.source)
    if not source.is_file():
        raise LfxbenchError(
            "the ray executor reloads the suite in its workers: run it from a suite file"
        )
    spec = WorkerSpec(
        suite_path=str(source.resolve()),
        overrides=runner.suite.overrides,
        run_dir=str(runner.run_dir.resolve()),
        cache_dir=str(runner.cache.root.resolve()),
        data_dir=str(runner.data_dir.resolve()),
        device=str(runner.device),
        num_threads=torch.get_num_threads(),
    )
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    # On the CPU, as many cores as the threads a task uses: tasks never oversubscribe a node.
    on_gpu = runner.device.type == "cuda"
    resources = {"num_gpus": 1} if on_gpu else {"num_cpus": spec.num_threads}
    train, retrain_ahead, group, pair = (
        ray.remote(**resources)(task) for task in (_train, _retrain_ahead, _group, _pair)
    )

    models = {}
    for cell in [g[0] for g in groups] + [c for p in pairs for c in (p.first, p.second)]:
        models.setdefault((cell.model.id, cell.seed), cell)
    total = sum(map(len, groups)) + len(pairs)
    with progress.showing(total, f"{runner.suite.name} (ray)", runner.progress):
        progress.stage(f"training {len(models)} models")
        _wait(ray, {train.remote(spec, cell.key): (0, "") for cell in models.values()})
        batches = runner.retraining_batches(groups)
        progress.stage(f"retraining subset models of {len(batches)} model seeds")
        _wait(ray, {retrain_ahead.remote(spec, [c.key for c in b]): (0, "") for b in batches})
        progress.stage(f"explaining in {len(groups)} groups")
        _wait(
            ray,
            {
                group.remote(spec, [cell.key for cell in g]): (
                    len(g),
                    f"{g[0].model.id} seed {g[0].seed} {g[0].method.id}: {len(g)} metrics",
                )
                for g in groups
            },
        )
        progress.stage(f"{len(pairs)} pairwise comparisons")
        _wait(
            ray,
            {
                pair.remote(spec, p.key): (
                    1,
                    f"{p.first.metric.id}: {p.first.model.id}/{p.first.method.id} vs "
                    f"{p.second.model.id}/{p.second.method.id}",
                )
                for p in pairs
            },
        )


def _wait(ray, tasks: dict) -> None:
    """Gather a wave of tasks (each: its cells and their name), reporting each as it
    finishes; a user error keeps its type."""
    remaining = list(tasks)
    while remaining:
        done, remaining = ray.wait(remaining, num_returns=1)
        try:
            ray.get(done[0])
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, LfxbenchError):
                raise error.cause from None
            raise
        cells, text = tasks[done[0]]
        if cells:
            progress.finished(cells, text)


EXECUTORS = {"local": run_locally, "ray": run_on_ray}
