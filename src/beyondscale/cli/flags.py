"""How every `beyondscale` command reads its flags: the shared options, hidden aliases, and one settings
object built from the parsed flags (as litgpt's dataclass arguments), never field by field.

Flag style, the same in every command: `--models/-m` and `--tasks/-t` (comma-separated or repeated),
`--json`, `--log-level`, `--store`, booleans as `--flag/--no-flag`. Older spellings (`--model`, `--task`,
`--metric`) still parse, as hidden aliases. Bad values are usage errors raised while parsing, so the entry point
prints them as one line naming the flag (exit 2) before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from beyondscale._quiet_deps import LOG_LEVELS
from beyondscale.store import (
    DEFAULT_STORE as DEFAULT_STORE,  # every command's store unless --store says otherwise
)

T = TypeVar("T")


# ---- values checked while parsing ---------------------------------------------------------------
def batch_size(value: Any) -> int | str:
    """'auto' or a positive integer."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise typer.BadParameter(f"expected 'auto' or a positive integer, got {value!r}")


def log_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOG_LEVELS:
        raise typer.BadParameter(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return text


# ---- the shared options -------------------------------------------------------------------------
StoreOpt = Annotated[str, typer.Option("--store", help="Results database (SQLite).")]
ProbeStoreOpt = Annotated[str, typer.Option("--store", help="Results database (SQLite); '-' stores nothing.")]
JsonOpt = Annotated[bool, typer.Option("--json/--no-json", help="Print only a JSON document on stdout.")]
LogOpt = Annotated[str, typer.Option("--log-level", parser=log_level, help="debug, info, warning or error.")]
ModelsOpt = Annotated[list[str], typer.Option(
    "--models", "-m", help="Hub ids, HF folders or .gguf files (repeat or comma-separate); NAME=SPEC names one.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Hub id, HF folder or .gguf file.")]
TasksOpt = Annotated[list[str], typer.Option(
    "--tasks", "-t", help="Built-in task names or YAML paths (repeat or comma-separate).")]
TaskFilterOpt = Annotated[list[str] | None, typer.Option("--tasks", "-t", help="Only these tasks.")]
ModelFilterOpt = Annotated[list[str] | None, typer.Option("--models", "-m", help="Only these models (names or keys).")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
DtypeOpt = Annotated[str, typer.Option(help="auto (fp32 on CPU), float32, bfloat16, float16.")]
BatchSizeOpt = Annotated[Any, typer.Option(parser=batch_size, help="'auto' or a positive integer.")]

# Old spellings that still parse, hidden from --help; every command gets these unless it owns the name.
ALIASES = {"--model": "--models", "--task": "--tasks", "--metric": "--metrics"}


def aliased(aliases: Mapping[str, str] | None = None) -> type[TyperCommand]:
    """A command class that reads each hidden alias as its canonical flag (`--task x`, `--task=x`)."""
    table = dict(ALIASES if aliases is None else aliases)

    class AliasedCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            own = {opt for param in self.params for opt in (*param.opts, *param.secondary_opts)}
            live = {old: new for old, new in table.items() if old not in own and new in own}
            return super().parse_args(ctx, _rewrite(args, live))

    return AliasedCommand


def _rewrite(args: list[str], aliases: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        out.append(aliases[name] + eq + value if name in aliases else arg)
    return out


# ---- parsed flags -> one settings object -------------------------------------------------------
def split_list(values: list[str] | None) -> list[str]:
    """`-t a,b -t c` -> [a, b, c]."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def split_models(values: list[str] | None) -> list[str]:
    """As `split_list`, but a spec naming an existing path keeps its commas."""
    out: list[str] = []
    for value in values or []:
        path = value.partition("=")[2] if "=" in value else value
        out.extend([value] if Path(path).expanduser().exists() else split_list([value]))
    return out


def from_flags(cls: type[T], flags: Mapping[str, Any], **given: Any) -> T:
    """`cls` (a dataclass) from the parsed flags that share its field names; a field that is itself a
    dataclass is built from the same flags. `given` wins over the flags."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in given:
            values[field.name] = given[field.name]
        elif field.name in flags:
            values[field.name] = flags[field.name]
        elif dataclasses.is_dataclass(hints.get(field.name)):
            values[field.name] = from_flags(hints[field.name], flags)
    return cls(**values)
