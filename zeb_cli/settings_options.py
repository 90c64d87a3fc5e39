"""Typer options made from a settings model's fields, so a setting is defined (name, type, default, help) once.

`settings_command` wraps a function `fn(settings_values: dict, **extra)` as a typer command whose options are the
model's fields (plus `extra`, the command's own options such as --threads, and --settings-json). The values passed
on are only the options given on the command line, over the JSON file's: every default stays the model's.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Setting:
    """One CLI option for one settings field."""

    name: str
    annotation: Any
    default: Any  # None where the model computes it (default_factory) or requires it
    help: str
    flags: tuple[str, ...] = ()


def model_settings(
    model: type[BaseModel], flags: dict[str, tuple[str, ...]] | None = None, exclude: Iterable[str] = ()
) -> list[Setting]:
    """A Setting per field of `model` (its docstring the help), except nested models/dataclasses and `exclude`."""
    flags = flags or {}
    out = []
    for name, info in model.model_fields.items():
        if name in exclude or is_dataclass(info.annotation) or _is_model(info.annotation):
            continue
        required = info.is_required()
        default = None if required or info.default_factory is not None else info.default
        annotation = info.annotation if default is not None or _optional(info.annotation) else info.annotation | None
        help_text = " ".join((info.description or "").split()) + (" Required." if required else "")
        out.append(Setting(name, annotation, default, help_text, flags.get(name, ())))
    return out


def dataclass_settings(
    cls: type, helps: dict[str, str], flags: dict[str, tuple[str, ...]] | None = None
) -> list[Setting]:
    """A Setting per field of dataclass `cls` named in `helps` (its default the dataclass's)."""
    flags = flags or {}
    hints = inspect.get_annotations(cls, eval_str=True)
    return [
        Setting(f.name, hints[f.name], f.default, helps[f.name], flags.get(f.name, ()))
        for f in fields(cls)
        if f.name in helps and f.default is not MISSING
    ]


def settings_command(
    fn: Callable[..., None], settings: list[Setting], extra: list[inspect.Parameter], what: str
) -> Callable[..., None]:
    """A typer command: `settings` as options, then `extra`, then --settings-json; calls fn(values, **extra)."""
    names = [s.name for s in settings]

    @functools.wraps(fn)
    def command(ctx: typer.Context, **kwargs: Any) -> None:
        path = kwargs.pop("settings_json")
        values: dict[str, Any] = {}
        if path is not None:
            try:
                values = json.loads(Path(path).read_text())
            except (OSError, ValueError) as exc:
                raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--settings-json") from None
            if not isinstance(values, dict):
                raise typer.BadParameter(f"{path} does not hold a JSON object", param_hint="--settings-json")
        for name in names:  # only what the command line says, over the file; the rest is the model's
            value = kwargs.pop(name)
            source = ctx.get_parameter_source(name)  # typer's own click: compare by name
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
                values[name] = value
        fn(values, **kwargs)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    for s in settings:
        own = f"--{_dash(s.name)}/--no-{_dash(s.name)}" if s.annotation is bool else f"--{_dash(s.name)}"
        flag = s.flags or (own,)
        params.append(
            inspect.Parameter(
                s.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=s.default,
                annotation=Annotated[s.annotation, typer.Option(*flag, help=s.help)],
            )
        )
    params += extra
    params.append(
        inspect.Parameter(
            "settings_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(
                    help=f"JSON file of {what} settings (field names as in the options, with _); options given here "
                    "override it. `zeb train` starts its processes this way."
                ),
            ],
        )
    )
    command.__dict__["__signature__"] = inspect.Signature(params)  # what inspect.signature, so typer, reads
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # typer must read the signature above, not fn's
    return command


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line per problem, named by option."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"--{_dash(where)}: {msg}" if where else msg)
    return "; ".join(lines)


def _dash(name: str) -> str:
    return name.replace("_", "-")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _optional(annotation: Any) -> bool:
    return type(None) in getattr(annotation, "__args__", ())
