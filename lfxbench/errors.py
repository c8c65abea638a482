"""Errors a user can fix. The CLI prints them without a traceback and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class LfxbenchError(Exception):
    """Bad input: a suite, a name, a parameter or a missing data file."""

    exit_code = 2


class UnknownNameError(LfxbenchError, KeyError):
    """A name that is not in a registry; the message suggests the closest ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}{hint} Known {kind}s: {listing}")
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class SuiteError(LfxbenchError):
    """A suite file that does not validate; names the file and the field."""

    # A suite of another tool (or a wrong indentation) yields dozens of problems at once;
    # the first ones tell what is wrong, the rest bury them.
    SHOWN = 20

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source, self.problems = source, problems
        lines = [f"{source}: {field}: {message}" for field, message in problems[: self.SHOWN]]
        if len(problems) > self.SHOWN:
            lines.append(f"{source}: ... and {len(problems) - self.SHOWN} more problems")
        super().__init__("\n".join(lines))


class DataNotFoundError(LfxbenchError, FileNotFoundError):
    """A real dataset file that is absent from the data directory."""


class DataFileError(LfxbenchError, ValueError):
    """A dataset file that is present but is not what its loader reads: the message names the
    file, says what is wrong with it and what was expected instead (usually where the right
    file comes from).

    A ``ValueError`` too, as the loaders' format errors were before it existed. The fields
    are the exception's args, so it survives pickling (the Ray executor sends it back)."""

    def __init__(self, path: str | Path, problem: str, expected: str):
        super().__init__(str(path), problem, expected)
        self.path, self.problem, self.expected = str(path), problem, expected

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}; expected {self.expected}"
