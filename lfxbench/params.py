"""Validate the ``params:`` of a suite entry against the signature of what it configures."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

# Interpolation steps and samples per explained example: each multiplies a batch in memory
# (Captum expands the inputs that many times), so a typo such as 10**12 stops at validation
# rather than in a MemoryError after the model has trained.
Steps = typing.Annotated[int, Field(ge=1, le=10_000)]


def _signature_target(target: Callable[..., Any]) -> Callable[..., Any]:
    return target.__init__ if inspect.isclass(target) else target


def params_model(target: Callable[..., Any], skip: Iterable[str] = ()) -> type[BaseModel]:
    """A pydantic model whose fields are the keyword parameters of ``target``."""
    function = _signature_target(target)
    hints = typing.get_type_hints(function, include_extras=True)  # keep Field constraints
    fields: dict[str, Any] = {}
    skipped = {"self", *skip}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in skipped or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (annotation, default)
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)
    return create_model(
        f"{getattr(target, '__name__', 'Target')}Params", __config__=config, **fields
    )


def validate_params(
    target: Callable[..., Any], params: dict[str, Any], skip: Iterable[str] = ()
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Return (validated params, problems); each problem is (field path, message)."""
    model = params_model(target, skip)
    try:
        validated = model.model_validate(params)
    except ValidationError as error:
        allowed = ", ".join(model.model_fields) or "(none)"
        problems = []
        for item in error.errors():
            field = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
            ).lstrip(".")
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = f"unknown parameter; allowed: {allowed}"
            problems.append((field, message))
        return {}, problems
    # Attributes, not model_dump(): nested models (e.g. a Baseline) stay typed objects.
    values = {name: getattr(validated, name) for name in model.model_fields}
    # Rules across parameters, which a signature cannot state: a classmethod
    # ``check_params(values) -> [(field, message)]`` on the target.
    problems = list(getattr(target, "check_params", lambda _: [])(values))
    return ({}, problems) if problems else (values, [])
