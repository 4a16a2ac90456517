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
from beyondscale.errors import UserError
from beyondscale.evaluator.settings import parse_batch_size
from beyondscale.store import (
    DEFAULT_STORE as DEFAULT_STORE,  # every command's store unless --store says otherwise
)

T = TypeVar("T")


# ---- values checked while parsing ---------------------------------------------------------------
def batch_size(value: Any) -> int | str:
    """'auto' or a positive integer."""
    parsed = parse_batch_size(value)
    if parsed is None:
        raise typer.BadParameter(f"expected 'auto' or a positive integer, got {value!r}")
    return parsed


def limit(value: Any) -> int | float:
    """lm-eval's --limit: a count of documents (1, 2, ...) or a fraction of each task (0 < x < 1)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise typer.BadParameter(f"expected a count (1, 2, ...) or a fraction between 0 and 1, got {value!r}") from None
    if 0 < number < 1:
        return number
    if number >= 1 and number.is_integer():
        return int(number)
    raise typer.BadParameter(f"expected a count (1, 2, ...) or a fraction between 0 and 1, got {value!r}")


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

LimitOpt = Annotated[Any, typer.Option(
    "--limit", "-L", parser=limit, help="First N documents of each task, or a fraction of each (0 < x < 1).")]

# lm-evaluation-harness's underscore spellings of `eval`'s flags: its command line works with the program renamed.
LM_EVAL_ALIASES = {f"--{name}": f"--{name.replace('_', '-')}" for name in (
    "model_args", "include_path", "num_fewshot", "batch_size", "output_path", "log_samples", "apply_chat_template",
    "system_instruction", "gen_kwargs", "allow_task_code", "trust_remote_code", "bootstrap_iters", "max_length")}
HF_MODELS = frozenset({"hf", "huggingface", "hf-auto", "beyondscale"})  # lm-eval's --model names served here
MODEL_ARGS = frozenset({"pretrained", "revision", "dtype", "gguf_file", "device", "batch_size", "max_length",
                        "trust_remote_code", "add_bos_token"})
MODEL_ARGS_IGNORED = frozenset({"parallelize", "max_batch_size", "backend", "use_fast_tokenizer", "truncation",
                                "logits_cache"})


def lm_eval_model(models: list[str], model_args: str | None) -> tuple[list[str], dict[str, Any]]:
    """`--model hf --model_args pretrained=X,revision=R,dtype=D,gguf_file=F` as our model spec plus the
    settings it names (dtype, device, ...); other `--models` pass through."""
    if model_args is None:
        if [m.lower() for m in models] in ([m] for m in HF_MODELS):
            raise UserError(f"--model {models[0]}: give --model_args pretrained=PATH_OR_HUB_ID")
        return models, {}
    if len(models) != 1 or models[0].lower() not in HF_MODELS:
        raise UserError(f"--model_args: only with --model hf (got --model {','.join(models)})")
    args: dict[str, str] = {}
    for piece in (p.strip() for p in model_args.split(",")):
        key, eq, value = piece.partition("=")
        if not piece or not eq or not key.strip() or not value.strip():
            raise UserError(f"--model_args {model_args!r}: expected key=value pairs separated by commas, got {piece!r}")
        args[key.strip()] = value.strip()
    unknown = sorted(set(args) - MODEL_ARGS - MODEL_ARGS_IGNORED)
    if unknown:
        raise UserError(f"--model_args: beyondscale does not take {', '.join(unknown)} "
                        f"(it takes {', '.join(sorted(MODEL_ARGS))})")
    if "pretrained" not in args:
        raise UserError(f"--model_args {model_args!r}: pretrained=PATH_OR_HUB_ID is required")
    spec = args["pretrained"]
    if "gguf_file" in args:
        spec = str(Path(spec).expanduser() / args["gguf_file"])
    elif args.get("revision") and args["revision"] != "main":
        spec = f"{spec}@{args['revision']}"
    settings: dict[str, Any] = {k: args[k] for k in ("dtype", "device") if k in args}
    if "batch_size" in args:
        try:
            settings["batch_size"] = batch_size(args["batch_size"])
        except typer.BadParameter as err:
            raise UserError(f"--model_args batch_size={args['batch_size']}: {err.message}") from None
    if "max_length" in args:
        settings["max_length"] = _positive(args["max_length"], "max_length")
    for key in ("trust_remote_code", "add_bos_token"):
        if key in args:
            settings[key] = args[key].lower() in ("1", "true", "yes")
    return [spec], settings


def _positive(value: str, key: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise UserError(f"--model_args {key}={value}: expected a positive integer")
    return int(value)


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
