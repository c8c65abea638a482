"""Name -> implementation registries for methods, metrics, models and datasets.

Built-ins register themselves on import of their package; a user's code enters the
same way, through a file or module listed under ``plugins:`` in a suite, or through
the ``lfxbench.plugins`` entry-point group of an installed package.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from lfxbench.errors import LfxbenchError, UnknownNameError

T = TypeVar("T")

ENTRY_POINT_GROUP = "lfxbench.plugins"


@dataclass(frozen=True)
class Registered(Generic[T]):
    name: str
    target: T
    description: str


def _first_doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


class Registry(Generic[T]):
    """Names of one kind. ``bases`` (``"module:Name,Name"``) are the classes a registered
    target must subclass; each may declare ``DECLARED``, its class attributes and their
    allowed values, which registration checks (the mistake is found when the plugin
    loads, not after a model has trained)."""

    def __init__(self, kind: str, bases: str | None = None):
        self.kind, self._bases = kind, bases
        self._entries: dict[str, Registered[T]] = {}

    def _declaration_problem(self, name: str, target: Any) -> str | None:
        if self._bases is None:
            return None
        module, names = self._bases.split(":")
        bases = tuple(getattr(importlib.import_module(module), n) for n in names.split(","))
        wanted = " or ".join(base.__name__ for base in bases)
        if not (isinstance(target, type) and issubclass(target, bases)):
            return f"{target!r} must be a subclass of {wanted} (from {module})"
        declared: dict[str, tuple[Any, ...]] = getattr(target, "DECLARED", {})
        for attribute, allowed in declared.items():
            if getattr(target, attribute, None) not in allowed:
                found = getattr(target, attribute, "(not set)")
                return (
                    f"{target.__name__}.{attribute} is {found!r}; declare it as one of "
                    f"{', '.join(map(repr, allowed))}"
                )
        return None

    def register(self, name: str, description: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("saliency")`` over a class or function."""

        def decorate(target: T) -> T:
            previous = self._entries.get(name)
            if previous is not None and previous.target is not target:
                # Re-importing the same module (e.g. a plugin file loaded twice) is fine;
                # two different implementations under one name are not.
                same_origin = getattr(previous.target, "__qualname__", None) == getattr(
                    target, "__qualname__", None
                ) and getattr(previous.target, "__module__", None) == getattr(
                    target, "__module__", None
                )
                if not same_origin:
                    raise LfxbenchError(
                        f"{self.kind} {name!r} is already registered by "
                        f"{previous.target!r}; pick another name"
                    )
            problem = self._declaration_problem(name, target)
            if problem is not None:
                raise LfxbenchError(f"{self.kind} {name!r} cannot be registered: {problem}")
            self._entries[name] = Registered(name, target, description or _first_doc_line(target))
            return target

        return decorate

    def get(self, name: str) -> T:
        load_builtins()
        try:
            return self._entries[name].target
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[Registered[T]]:
        load_builtins()
        return iter(sorted(self._entries.values(), key=lambda entry: entry.name))

    def names(self) -> list[str]:
        return [entry.name for entry in self]


METHODS: Registry[Any] = Registry("method", "lfxbench.methods.base:FeatureMethod,ExampleMethod")
METRICS: Registry[Any] = Registry("metric", "lfxbench.metrics.base:Metric,PairwiseMetric")
MODELS: Registry[Any] = Registry("model", "lfxbench.models.base:ZooModel")
DATASETS: Registry[Any] = Registry("dataset")  # functions returning DatasetSplits

REGISTRIES = {"methods": METHODS, "metrics": METRICS, "models": MODELS, "datasets": DATASETS}

register_method = METHODS.register
register_metric = METRICS.register
register_model = MODELS.register
register_dataset = DATASETS.register

_BUILTIN_PACKAGES = (
    "lfxbench.datasets",
    "lfxbench.models",
    "lfxbench.methods",
    "lfxbench.metrics",
)
_builtins_loaded = False


def load_builtins() -> None:
    """Import the shipped plugin packages and the installed entry points, once."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for name in _BUILTIN_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{name}.{module.name}")
    load_entry_point_plugins()


_DECORATOR_KINDS = {f"register_{kind[:-1]}": kind for kind in REGISTRIES}


def _registered_name(decorator: ast.expr, kind: str) -> str | None:
    """The name in ``@register_<kind>("name")`` or ``@<KINDS>.register("name")``, else None."""
    if not (isinstance(decorator, ast.Call) and decorator.args):
        return None
    function, name = decorator.func, decorator.args[0]
    if isinstance(function, ast.Name):
        decorates = _DECORATOR_KINDS.get(function.id)
    elif isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
        decorates = function.value.id.lower() if function.attr == "register" else None
    else:
        decorates = None
    if decorates != kind or not isinstance(name, ast.Constant):
        return None
    return str(name.value)


def catalogue(kind: str) -> list[tuple[str, str]]:
    """(name, description) of every entry of ``kind``, sorted. Until something needs the
    built-ins themselves, theirs are read from their source files, not imported: listing
    them loads neither torch nor the model zoo."""
    registry = REGISTRIES[kind]
    if _builtins_loaded or any(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)):
        return [(entry.name, entry.description) for entry in registry]
    found = []
    for package in _BUILTIN_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations is not None
        for module in pkgutil.iter_modules(spec.submodule_search_locations):
            folder = Path(module.module_finder.path)  # type: ignore[union-attr]
            path = (
                folder / module.name / "__init__.py"
                if module.ispkg
                else folder / f"{module.name}.py"
            )
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in tree.body:
                if not isinstance(node, ast.ClassDef | ast.FunctionDef):
                    continue
                for decorator in node.decorator_list:
                    name = _registered_name(decorator, kind)
                    if name is not None:
                        doc = ast.get_docstring(node) or ""
                        found.append((name, doc.splitlines()[0] if doc else ""))
    return sorted(found)


def load_entry_point_plugins() -> None:
    """Import every module an installed package declares in the ``lfxbench.plugins`` group."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as error:  # a broken third-party plugin must say who it is
            raise LfxbenchError(
                f"plugin entry point {entry_point.name!r} ({entry_point.value}) failed to "
                f"load: {error}"
            ) from error


def _failure_line(error: BaseException, path: Path) -> str:
    """Where in the plugin file an import failed: its last frame there, else nothing."""
    if isinstance(error, SyntaxError) and error.lineno is not None:
        return f" line {error.lineno}:"
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)
    ]
    return f" line {frames[-1].lineno}:" if frames else ""


def load_plugin(spec: str, base_dir: Path | None = None) -> None:
    """Import a plugin given as a ``.py`` path (relative to ``base_dir``) or a module name.

    A plugin is code run with the user's rights, as trusted as the suite that lists it.
    """
    load_builtins()
    path = Path(spec)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if spec.endswith(".py") or "/" in spec or path.is_file():
        path = path.resolve()
        if not path.is_file():
            raise LfxbenchError(f"plugin file {str(path)!r} does not exist")
        if path.suffix != ".py":
            raise LfxbenchError(
                f"plugin {str(path)!r} is not a Python file: give a .py file or a module name"
            )
        # Named by content: the same plugin file loaded from two places is one plugin.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        module_name = f"lfxbench_plugin_{path.stem}_{digest}"
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None  # a .py file
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except LfxbenchError:
            del sys.modules[module_name]
            raise
        except Exception as error:  # the plugin's own bug: say where, not a traceback
            del sys.modules[module_name]
            raise LfxbenchError(
                f"plugin file {str(path)!r} failed to load:{_failure_line(error, path)} "
                f"{type(error).__name__}: {error}"
            ) from error
    else:
        try:
            importlib.import_module(spec)
        except LfxbenchError:
            raise
        except Exception as error:
            raise LfxbenchError(
                f"plugin module {spec!r} cannot be imported: {type(error).__name__}: {error}"
            ) from error
