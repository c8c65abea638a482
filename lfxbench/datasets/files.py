"""Reading real dataset files: a file that is there but unreadable is an error naming it."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from lfxbench.errors import DataFileError

GZIP_MAGIC = b"\x1f\x8b"


def read_file_bytes(path: Path, expected: str) -> bytes:
    """The content of ``path``, decompressed when its name ends in ``.gz``.

    An unreadable, empty, non-gzip, truncated or corrupt file is a ``DataFileError`` that says
    so and what was ``expected`` (e.g. "the gzip-compressed IDX file from ...").
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFileError(path, f"cannot be read ({error.strerror})", expected) from error
    if not raw:
        raise DataFileError(path, "empty file (0 bytes)", expected)
    if path.suffix != ".gz":
        return raw
    if raw[:2] != GZIP_MAGIC:
        raise DataFileError(path, "not a gzip file", expected)
    try:
        return gzip.decompress(raw)
    except EOFError as error:
        problem = "truncated gzip file (it ends before the compressed data does); download it again"
        raise DataFileError(path, problem, expected) from error
    except (gzip.BadGzipFile, zlib.error) as error:
        problem = f"corrupt gzip file ({error}); download it again"
        raise DataFileError(path, problem, expected) from error
