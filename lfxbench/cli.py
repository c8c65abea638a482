"""``lfxbench run | list | leaderboard | validate``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from lfxbench import __version__
from lfxbench.errors import LfxbenchError
from lfxbench.registry import REGISTRIES, catalogue
from lfxbench.report.tolerances import Tolerances


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lfxbench", description="Benchmark label-free explanation methods of encoders."
    )
    parser.add_argument("--version", action="version", version=f"lfxbench {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    loudness.add_argument("-q", "--silent", action="store_true", help="log warnings only")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a suite and write its leaderboard")
    run.add_argument("suite", help="suite YAML file or a shipped suite's name, e.g. smoke")
    run.add_argument(
        "--out", type=Path, default=Path("runs"), help="parent of the run directory (default: runs)"
    )
    run.add_argument("--run-name", help="run directory name (default: the suite's name)")
    run.add_argument(
        "--cache-dir",
        type=Path,
        help="trained models and attributions (default: $LFXBENCH_CACHE or runs/cache)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        help="folder of real dataset files (default: $LFXBENCH_DATA or ./data)",
    )
    run.add_argument("--device", help="override the suite's device: auto, cpu, cuda, cuda:N")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a suite field (dotted path, YAML value), e.g. --set seeds=[0] "
        "--set models.0.recipe.epochs=2; repeatable",
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        help="where cells run (default: the suite's `executor`, else local); "
        "ray uses $RAY_ADDRESS or starts a local instance",
    )

    listing = commands.add_parser("list", help="list registered methods, metrics, models, datasets")
    listing.add_argument("what", choices=[*sorted(REGISTRIES), "suites"])

    board = commands.add_parser("leaderboard", help="render the leaderboard of a run directory")
    board.add_argument("run_dir", type=Path)
    board.add_argument("--format", choices=("md", "csv", "html", "latex", "json"), default="md")
    board.add_argument("--output", type=Path, help="write to this file instead of stdout")

    versus = commands.add_parser(
        "compare",
        help="quality and runtime of CANDIDATE against BASELINE; exit 1 on a regression",
    )
    versus.add_argument("baseline", type=Path, help="run directory, results.csv or leaderboard CSV")
    versus.add_argument(
        "candidate", type=Path, help="run directory, results.csv or leaderboard CSV"
    )
    for name, field in Tolerances.model_fields.items():
        versus.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            dest=name,
            help=f"{field.description} (default {field.default}, or the "
            "candidate suite's `compare:`)",
        )
    versus.add_argument("--format", choices=("md", "csv", "json"), default="md")
    versus.add_argument("--output", type=Path, help="also write the table to this file")

    bench = commands.add_parser("bench", help="throughput per stage of a run directory")
    bench.add_argument("run_dir", type=Path)

    validate = commands.add_parser("validate", help="check a suite file without running it")
    validate.add_argument("suite", help="suite YAML file or a shipped suite's name")

    report = commands.add_parser("report", help="reports built from run directories")
    reports = report.add_subparsers(dest="report", required=True)
    paper = reports.add_parser(
        "paper",
        help="the label-free XAI paper's and its reproduction's claims against our runs",
    )
    paper.add_argument(
        "run_dirs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run directories of the paper suites (paper, pretext, vae, roar or their _smoke)",
    )
    paper.add_argument(
        "--output",
        type=Path,
        default=Path("leaderboard/paper_vs_ours.md"),
        help="Markdown file to write (default: leaderboard/paper_vs_ours.md)",
    )
    readme = reports.add_parser(
        "readme", help="regenerate the README's leaderboard excerpts from leaderboard/*.csv"
    )
    readme.add_argument("readme", type=Path, nargs="?", default=Path("README.md"))
    readme.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if an excerpt is stale"
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    from lfxbench.api import run

    started = time.perf_counter()
    finished = run(
        args.suite,
        overrides=args.set,
        out=args.out,
        run_name=args.run_name,
        cache_dir=args.cache_dir,
        data_dir=args.data_dir,
        device=args.device,
        executor=args.executor,
        progress=not args.quiet,
    )
    print(finished.leaderboard())
    print(
        f"{len(finished.records)} cells on {finished.environment['device_name']} in "
        f"{time.perf_counter() - started:.1f} s; written to {finished.run_dir}/"
    )
    for name in sorted(finished.written):
        print(f"  {finished.written[name]}")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.what == "suites":
        from lfxbench.suite_yaml import read_suite_document, shipped_suites

        shipped = shipped_suites()
        described = {name: read_suite_document(path) for name, path in shipped.items()}
        rows = [(name, str(raw.get("description", ""))) for name, raw in described.items()]
    else:
        rows = catalogue(args.what)
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from lfxbench.report.formats import render
    from lfxbench.report.leaderboard import aggregate, trends
    from lfxbench.report.results import (
        LEADERBOARD_COLUMNS,
        load_results,
        load_samples,
        read_run_suite,
    )

    results = load_results(args.run_dir, LEADERBOARD_COLUMNS)
    parameters = read_run_suite(args.run_dir).get("trends", [])
    trend_table = trends(results, parameters) if parameters else None
    figures = sorted((args.run_dir / "figures").glob("*.png"))
    text = render(
        aggregate(results, load_samples(args.run_dir)),
        args.format,
        title=str(results["suite"].iloc[0]),
        trend_table=trend_table,
        figures=figures,
    )
    if args.output:
        from lfxbench.storage import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from lfxbench.report.compare import compare, load_board, render_markdown
    from lfxbench.storage import atomic_write_text

    baseline, _ = load_board(args.baseline)
    candidate, settings = load_board(args.candidate)
    overrides = {
        name: getattr(args, name)
        for name in Tolerances.model_fields
        if getattr(args, name) is not None
    }
    try:
        tolerances = Tolerances(**{**settings, **overrides})
    except ValidationError as error:
        problems = "; ".join(
            f"--{'-'.join(map(str, item['loc'])).replace('_', '-')}: {item['msg']}"
            for item in error.errors()
        )
        raise LfxbenchError(f"compare: {problems}") from None
    table = compare(baseline, candidate, tolerances)
    if args.format == "md":
        text = render_markdown(table, tolerances)
    elif args.format == "csv":
        text = table.to_csv(index=False, float_format="%.6g")
    else:
        text = table.to_json(orient="records", indent=2) + "\n"
    sys.stdout.write(text)
    if args.output:
        atomic_write_text(args.output, text)
    return 1 if table["regression"].any() else 0


def _bench(args: argparse.Namespace) -> int:
    from lfxbench.report.bench import BENCH_COLUMNS, throughput_report
    from lfxbench.report.results import load_results

    print(throughput_report(load_results(args.run_dir, BENCH_COLUMNS)))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from lfxbench.cells import compatible
    from lfxbench.suite import load_suite
    from lfxbench.suite_summary import describe_suite
    from lfxbench.suite_yaml import find_suite

    suite = load_suite(find_suite(args.suite))
    print(f"{args.suite}: valid; {len(suite.cells())} cells, {len(suite.pair_cells())} pairs")
    for line in describe_suite(suite):
        print(f"  {line}")
    for model in suite.models:
        for method in suite.methods:
            if not compatible(model, method):
                print(
                    f"  skipped: {method.id} on {model.id} (its objective "
                    f"{model.recipe.objective!r} has no per-example loss)"
                )
    return 0


def _report(args: argparse.Namespace) -> int:
    if args.report == "readme":
        from lfxbench.report.excerpts import regenerate

        stale = regenerate(args.readme, check=args.check)
        verb = "stale" if args.check else "rewritten"
        for spec in stale:
            print(f"{args.readme}: excerpt {spec}: {verb}")
        return 1 if stale and args.check else 0
    from lfxbench.paper_report import write_report

    counts = write_report(args.run_dirs, args.output)
    print(f"{counts}; written to {args.output}")
    return 0


COMMANDS = {
    "run": _run,
    "list": _list,
    "leaderboard": _leaderboard,
    "compare": _compare,
    "bench": _bench,
    "validate": _validate,
    "report": _report,
}


def _out_of_memory(error: Exception) -> bool:
    torch = sys.modules.get("torch")  # `list` and `compare` never import it
    if torch is not None and isinstance(error, torch.OutOfMemoryError):
        return True
    # torch's CPU allocator raises a RuntimeError, not a MemoryError, when a request fails.
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # What the engine says while it works ("loaded, not trained"): -v more, -q (or a run's
    # --quiet) only warnings.
    quiet = args.silent or getattr(args, "quiet", False)
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="lfxbench: %(message)s", stream=sys.stderr)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe fails here, inside the handlers below
        return code
    except LfxbenchError as error:
        print(f"lfxbench: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # The reader left (`lfxbench bench RUN | head -1`): stop quietly, and point stdout
        # at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a tool killed by the signal reports
    except OSError as error:  # a folder or file the system refuses: the path is in it
        print(f"lfxbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "lfxbench: interrupted; finished cells and caches are kept, rerun to resume",
            file=sys.stderr,
        )
        return 130
    except Exception as error:
        if not _out_of_memory(error):
            raise
        print(
            f"lfxbench: error: out of memory ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); finished cells "
            "are kept. Lower the suite's batch_size or the sizes of the step that ran out, "
            "then rerun to resume",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
