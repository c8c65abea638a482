"""Errors a user can fix. The CLI prints them without a traceback and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source, self.problems = source, problems
        lines = [f"{source}: {field}: {message}" for field, message in problems]
        super().__init__("\n".join(lines))


class DataNotFoundError(LfxbenchError, FileNotFoundError):
    """A real dataset file that is absent from the data directory."""
