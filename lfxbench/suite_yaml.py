"""Reading a suite file: UTF-8 text, safe YAML, each key once, bounded in size and depth.

A suite is small, hand-written configuration. Anything far outside that (a binary file,
a key given twice, nesting or aliases that blow up into millions of values, integers no
tensor can hold) is refused here with the line it sits on, before validation walks it.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from lfxbench.errors import LfxbenchError, SuiteError

MAX_FILE_BYTES = 4 * 2**20
MAX_DEPTH = 50
# Values after aliases are expanded: a "billion laughs" document is a few lines of YAML.
MAX_VALUES = 200_000
INT64 = (-(2**63), 2**63 - 1)


class _SuiteLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and deep nesting (its composer
    recurses once per level, so 100,000 levels would exhaust Python's stack)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue  # `<<: *anchor` merges are overridden by design
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice in one mapping (lines {first_line[key]} and "
                    f"{line}); YAML would keep only the last, so give it once",
                    key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SuiteError(
            str(path),
            [
                (
                    "(encoding)",
                    f"not UTF-8 text: byte 0x{data[error.start]:02x} at line {line}, column "
                    f"{column}; a suite is a YAML file saved as UTF-8",
                )
            ],
        ) from None


def field_path(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def check_document(raw: Any, source: str) -> None:
    """Refuse a parsed document too large once aliases are expanded, or holding integers
    beyond 64 bits (torch and numpy overflow on them far from the suite)."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), raw)]
    seen = 0
    while stack:
        path, value = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise SuiteError(
                source,
                [("(top level)", f"more than {MAX_VALUES:,} values once aliases are expanded")],
            )
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
            raise SuiteError(
                source, [(field_path(path), f"{value} does not fit in a 64-bit integer")]
            )


def shipped_suites() -> dict[str, Path]:
    """The suites installed with the package, by name (``suites/*.yaml`` of the source)."""
    folder = importlib.resources.files("lfxbench.suites")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".yaml")
    }


def find_suite(spec: str | Path) -> Path:
    """A suite file: ``spec`` as a path, else the shipped suite of that name (``smoke``)."""
    path = Path(spec)
    if path.is_file() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    shipped = shipped_suites()
    if str(spec) in shipped:
        return shipped[str(spec)]
    raise LfxbenchError(
        f"suite {str(spec)!r} is neither a file nor a shipped suite; shipped suites: "
        f"{', '.join(shipped)} (`lfxbench list suites`)"
    )


def _parse(text: str, source: str, field: str) -> Any:
    """YAML text through the suite loader (safe: plain data only), or a SuiteError naming
    ``field`` with the line and column of the problem."""
    loader = _SuiteLoader(text)
    loader.name = source  # marks name the file, not "<unicode string>"
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        where = error.problem_mark or error.context_mark
        at = f"line {where.line + 1}, column {where.column + 1}: " if where else ""
        context = f" ({error.context})" if error.context else ""
        raise SuiteError(source, [(field, f"{at}{error.problem}{context}")]) from None
    except yaml.YAMLError as error:
        raise SuiteError(source, [(field, str(error).replace("\n", " "))]) from None
    finally:
        loader.dispose()


def _override(raw: Any, setting: str, source: str) -> None:
    """Apply one ``--set dotted.path=value`` (the value is YAML) to the parsed suite."""
    field, equals, text = setting.partition("=")
    parts = field.split(".")
    if not equals or not all(parts):
        raise SuiteError(source, [(f"--set {setting}", "expected dotted.path=value")])
    value = _parse(text, source, f"--set {setting}")
    target = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the suite"
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                problem = f"{where} is a list of {len(target)}: {part!r} is not an index in it"
                raise SuiteError(source, [(f"--set {setting}", problem)])
            key: Any = int(part)
        elif isinstance(target, dict):
            key = part
            if not last and key not in target:
                target[key] = {}
        else:
            problem = f"{where} is {target!r}, which holds no {part!r}"
            raise SuiteError(source, [(f"--set {setting}", problem)])
        if last:
            target[key] = value
        else:
            target = target[key]


def read_suite_document(path: Path, overrides: tuple[str, ...] = ()) -> Any:
    """The parsed YAML of a suite file with ``--set`` ``overrides`` applied, or a
    SuiteError / LfxbenchError naming the file (``check_document`` runs at validation, for
    documents from Python too)."""
    if not path.is_file():
        raise LfxbenchError(f"suite file {str(path)!r} does not exist")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SuiteError(
                str(path),
                [("(file)", f"{size:,} bytes; a suite file is at most {MAX_FILE_BYTES:,} bytes")],
            )
        data = path.read_bytes()
    except OSError as error:
        raise LfxbenchError(f"cannot read suite file {str(path)!r}: {error.strerror}") from None
    raw = _parse(_decode(path, data), str(path), "(yaml)")
    for setting in overrides:
        _override(raw, setting, str(path))
    return raw
