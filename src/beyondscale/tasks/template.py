"""Sandboxed Jinja rendering of lm-evaluation-harness prompt fields.

lm-eval renders `doc_to_text`/`doc_to_target`/`doc_to_choice` with a plain Jinja `Environment`
(`StrictUndefined`, `keep_trailing_newline=True`). We render the same strings the same way, but in
an `ImmutableSandboxedEnvironment` (no attribute escapes, no mutation) with only the filters of
`safe_builtins`, and with string repetition capped so a template cannot exhaust memory.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from beyondscale.errors import UserError
from beyondscale.tasks.safe_builtins import JINJA_FILTERS

MAX_RENDERED_CHARS = 10_000_000


class _Env(ImmutableSandboxedEnvironment):
    """Sandbox that also refuses `*`/`**` results too large to be a prompt."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * max(times, 0) > MAX_RENDERED_CHARS:
                        raise SecurityError("sequence repetition result too large")
            return left * right
        if operator == "**":
            if isinstance(right, int) and abs(right) > 1000:
                raise SecurityError("exponent too large")
            return left**right
        return super().call_binop(context, operator, left, right)


_ENV = _Env(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
_ENV.filters.update(JINJA_FILTERS)


class TemplateError(Exception):
    """A template failed; the caller adds the task/file/field to make it a `UserError`."""


@lru_cache(maxsize=512)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def check_syntax(source: str, *, where: str) -> None:
    """Compile `source` now so a broken template fails when the task is loaded, not mid-run."""
    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as err:
        raise UserError(
            f"{where}: Jinja syntax error at line {err.lineno} of the template: {err.message}"
        ) from None


def render(source: str, doc: dict) -> str:
    """lm-eval's `apply_template`: render `source` with the document's fields as variables."""
    try:
        return _compile(source).render(**doc)
    except jinja2.UndefinedError as err:
        raise TemplateError(f"missing field or value ({err.message})") from None
    except SecurityError as err:
        raise TemplateError(f"refused by the sandbox ({err})") from None
    except jinja2.TemplateError as err:
        raise TemplateError(str(err)) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as err:
        raise TemplateError(f"{type(err).__name__}: {err}") from None


def literal(text: str) -> Any:
    """`ast.literal_eval` (data only, never code), as lm-eval applies to rendered choices."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise TemplateError(f"rendered {text[:200]!r}, which is not a Python literal ({err})") from None
