"""Render a task's documents into `Item`s exactly as lm-evaluation-harness builds its requests.

The rules follow lm-eval 0.4.x `ConfigurableTask` (doc_to_text/doc_to_target/doc_to_choice,
`fewshot_context`, `build_qa_turn`, `construct_requests`) and its default `ContextSampler`:

- a template that names a document field returns the field's value; otherwise it is rendered with
  Jinja; a rendered digit string becomes an int when the task has `doc_to_choice`; a rendered
  "[...]" target and every rendered `doc_to_choice` are read back with `ast.literal_eval`;
- context = description + for each shot (question + target_delimiter + answer + fewshot_delimiter)
  + question; multiple_choice continuations are target_delimiter + choice; loglikelihood's single
  continuation is the rendered target as is (lm-eval adds no delimiter there: lambada's target
  carries its own leading space); loglikelihood_rolling scores the rendered target alone;
- shots are drawn by ONE `random.Random(seed)` advanced document by document in order (so `limit`
  keeps the first N prompts unchanged); the pool is fewshot_config.split / fewshot_split, else
  inline fewshot_config.samples, else training, validation, test split; the current document is
  removed from the draw when the few-shot split equals `test_split` (lm-eval's rule, None == None
  included), by drawing n + 1 and keeping the first n that are not the document.

`build_task` also returns a `BuildInfo` (seed, split, doc ids, the few-shot pool indices used for
every doc) for the store to record; `build_items` returns just the items.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from beyondscale.engine.requests import Item
from beyondscale.errors import UserError
from beyondscale.tasks import data, template
from beyondscale.tasks.safe_builtins import PROCESS_DOCS, PROCESS_RESULTS
from beyondscale.tasks.spec import TaskSpec

_UNSET = object()


@dataclass(frozen=True)
class BuildInfo:
    """How the items were made: enough to rebuild the same prompts and to audit the shots."""

    task: str
    split: str
    seed: int
    num_fewshot: int
    sampler: str
    fewshot_source: str | None
    n_docs_in_split: int
    doc_ids: list[int]
    fewshot_doc_ids: dict[int, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["fewshot_doc_ids"] = {str(k): v for k, v in self.fewshot_doc_ids.items()}
        return out


@dataclass(frozen=True)
class BuiltTask:
    items: list[Item]
    info: BuildInfo


def build_items(
    spec: TaskSpec, limit: int | None = None, seed: int = 1234, *, num_fewshot: int | None = None
) -> list[Item]:
    """One `Item` per evaluated document, in split order (see `build_task` for the details)."""
    return build_task(spec, limit=limit, seed=seed, num_fewshot=num_fewshot).items


def build_task(
    spec: TaskSpec, limit: int | None = None, seed: int = 1234, *, num_fewshot: int | None = None
) -> BuiltTask:
    """Load the eval split, render every document, and record how (seed, doc ids, shots).

    `num_fewshot` overrides the task file's `num_fewshot` (lm-eval's --num_fewshot); `limit`
    keeps the first N documents (lm-eval's --limit).
    """
    if limit is not None and limit < 1:
        raise UserError(f"task {spec.task}: limit must be at least 1 (got {limit})")
    shots = (spec.num_fewshot or 0) if num_fewshot is None else num_fewshot
    if shots < 0:
        raise UserError(f"task {spec.task}: num_fewshot must be >= 0 (got {shots})")
    return _Builder(spec, shots, seed).build(limit)


class _Builder:
    def __init__(self, spec: TaskSpec, num_fewshot: int, seed: int) -> None:
        self.spec = spec
        self.num_fewshot = num_fewshot if spec.output_type != "loglikelihood_rolling" else 0
        self.seed = seed
        self.rnd = random.Random(seed)
        self.where = f"task {spec.task}" + (f" ({spec.source_path})" if spec.source_path else "")
        fc = spec.fewshot_config
        fc_set = fc.model_fields_set if fc is not None else set()

        def fc_get(name: str, default: Any) -> Any:
            return getattr(fc, name) if fc is not None and name in fc_set else default

        self.fs_split: str | None = fc_get("split", spec.fewshot_split)
        self.fs_process: str | None = fc_get("process_docs", spec.process_docs)
        self.fs_text = fc_get("doc_to_text", spec.doc_to_text)
        self.fs_target = fc_get("doc_to_target", spec.doc_to_target)
        self.fs_choice = fc_get("doc_to_choice", spec.doc_to_choice)
        self.fs_target_delim: str = fc_get("target_delimiter", spec.target_delimiter)
        self.fs_fewshot_delim: str = fc_get("fewshot_delimiter", spec.fewshot_delimiter)
        self.sampler = fc.sampler if fc is not None else "default"
        self.fs_indices = fc.fewshot_indices if fc is not None else None
        self.fs_samples = fc.samples if fc is not None else None
        self.multiple_input = False

    # --- documents ----------------------------------------------------------------------------

    def _docs(self, split: str, process: str | None) -> list[dict[str, Any]]:
        docs = data.load_split(self.spec, split)
        if process is not None:
            try:
                docs = PROCESS_DOCS[process](docs)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
                raise UserError(
                    f"{self.where}: process_docs `{process}` failed on split {split} "
                    f"({type(err).__name__}: {err}); do the documents have the fields it expects?"
                ) from None
            if not docs:
                raise UserError(f"{self.where}: process_docs `{process}` left split {split} empty")
        return docs

    def _fewshot_pool(self, eval_split: str, eval_docs: list[dict[str, Any]]) -> tuple[list[dict], str]:
        spec = self.spec
        if self.fs_split is None and self.fs_samples is not None:
            pool, source = list(self.fs_samples), "fewshot_config.samples"
        else:
            if self.fs_split is not None:
                split, process = self.fs_split, self.fs_process
            else:
                split = spec.training_split or spec.validation_split or spec.test_split or eval_split
                process = spec.process_docs
            source = f"split:{split}"
            pool = (
                eval_docs
                if (split == eval_split and process == spec.process_docs)
                else self._docs(split, process)
            )
        if self.fs_indices:
            try:
                pool = [pool[i] for i in self.fs_indices]
            except IndexError:
                raise UserError(
                    f"{self.where}: fewshot_config.fewshot_indices go past the {len(pool)} few-shot documents"
                ) from None
        if not pool:
            raise UserError(f"{self.where}: no few-shot documents to sample from ({source})")
        return pool, source

    # --- field rendering (lm-eval's doc_to_* rules) --------------------------------------------

    def _render(self, tmpl: str, doc: dict, fieldname: str, doc_id: int | str) -> str:
        try:
            return template.render(tmpl, doc)
        except template.TemplateError as err:
            raise UserError(
                f"{self.where}: {fieldname} template {tmpl!r} failed on doc {doc_id}: {err}"
            ) from None

    def _literal(self, text: str, tmpl: str, fieldname: str, doc_id: int | str) -> Any:
        try:
            return template.literal(text)
        except template.TemplateError as err:
            raise UserError(f"{self.where}: {fieldname} template {tmpl!r} on doc {doc_id}: {err}") from None

    def text(self, doc: dict, doc_id: int | str, tmpl: Any = _UNSET) -> Any:
        t = self.spec.doc_to_text if tmpl is _UNSET else tmpl
        if isinstance(t, int):
            return t
        if isinstance(t, str):
            if t in doc:
                return doc[t]
            s = self._render(t, doc, "doc_to_text", doc_id)
            if s.isdigit() and s.isascii() and self.spec.doc_to_choice is not None:
                return int(s)
            return s
        raise UserError(
            f"{self.where}: doc_to_text must be a template, a field name or an int (doc {doc_id})"
        )

    def target(self, doc: dict, doc_id: int | str, tmpl: Any = _UNSET) -> Any:
        t = self.spec.doc_to_target if tmpl is _UNSET else tmpl
        if isinstance(t, int | list):
            return t
        if isinstance(t, str):
            if t in doc:
                return doc[t]
            s = self._render(t, doc, "doc_to_target", doc_id)
            if s.isdigit() and self.spec.doc_to_choice is not None and s.isascii():
                return int(s)
            if len(s) >= 2 and s[0] == "[" and s[-1] == "]":
                try:
                    return template.literal(s)
                except template.TemplateError:
                    return s
            return s
        raise UserError(f"{self.where}: doc_to_target must be a template, a field name, an int or a list")

    def choice(self, doc: dict, doc_id: int | str, tmpl: Any = _UNSET) -> list[Any]:
        c = self.spec.doc_to_choice if tmpl is _UNSET else tmpl
        if isinstance(c, str):
            out = (
                doc[c]
                if c in doc
                else self._literal(self._render(c, doc, "doc_to_choice", doc_id), c, "doc_to_choice", doc_id)
            )
        elif isinstance(c, dict):
            out = list(c.values())
        else:
            out = c
        if not isinstance(out, list | tuple):
            raise UserError(
                f"{self.where}: doc_to_choice gave {type(out).__name__} on doc {doc_id}; it must give a list"
            )
        return list(out)

    def description(self, doc: dict, doc_id: int) -> str:
        d = self.spec.description
        if not d:
            return ""
        if d in doc:
            return str(doc[d])
        return self._render(d, doc, "description", doc_id)

    # --- few-shot ------------------------------------------------------------------------------

    def _sample(self, pool: list[dict], n: int, eval_doc: dict | None, doc_id: int) -> list[int]:
        if n == 0:
            return []
        idx = list(range(len(pool)))
        if self.sampler == "first_n":
            cand = [i for i in idx if eval_doc is None or pool[i] != eval_doc]
            if n > len(cand):
                raise UserError(f"{self.where}: num_fewshot={n} but only {len(cand)} few-shot documents")
            return cand[:n]
        if eval_doc is None:
            if n > len(idx):
                raise UserError(f"{self.where}: num_fewshot={n} but only {len(idx)} few-shot documents")
            return self.rnd.sample(idx, n)
        picked: list[int] = []
        if n + 1 <= len(idx):
            picked = [i for i in self.rnd.sample(idx, n + 1) if pool[i] != eval_doc][:n]
        if len(picked) < n:
            cand = [i for i in idx if pool[i] != eval_doc]
            if n > len(cand):
                raise UserError(
                    f"{self.where}: num_fewshot={n} but only {len(cand)} few-shot documents besides doc {doc_id}"
                )
            picked = self.rnd.sample(cand, n)
        return picked

    def _shot_text(self, shot: dict, shot_id: str) -> str:
        q = self.text(shot, shot_id, self.fs_text)
        c = self.choice(shot, shot_id, self.fs_choice) if self.fs_choice else None
        a = self.target(shot, shot_id, self.fs_target)
        if self.multiple_input:
            if not isinstance(q, int) or c is None or not 0 <= q < len(c):
                raise UserError(
                    f"{self.where}: few-shot doc {shot_id}: doc_to_text index {q!r} is not a choice"
                )
            q, c = c[q], None
        if not isinstance(q, str):
            raise UserError(
                f"{self.where}: few-shot doc {shot_id}: doc_to_text gave {type(q).__name__}, not text"
            )
        if a is None or a == "":
            return q
        if isinstance(a, list):
            a = a[0] if a else ""
        if c and isinstance(a, int):
            if not 0 <= a < len(c):
                raise UserError(
                    f"{self.where}: few-shot doc {shot_id}: gold index {a} is out of range for {len(c)} choices"
                )
            a = c[a]
        return q + self.fs_target_delim + str(a) + self.fs_fewshot_delim

    # --- items ---------------------------------------------------------------------------------

    def build(self, limit: int | None) -> BuiltTask:
        spec = self.spec
        split = spec.eval_split()
        docs = self._docs(split, spec.process_docs)
        n_total = len(docs)
        if spec.output_type == "multiple_choice":
            first = self.text(docs[0], 0)
            self.multiple_input = isinstance(first, int) and not isinstance(first, bool)
        pool: list[dict] = []
        source: str | None = None
        if self.num_fewshot > 0:
            pool, source = self._fewshot_pool(split, docs)
        exclude_eval = self.fs_split == spec.test_split
        selected = docs[:limit] if limit is not None else docs
        items: list[Item] = []
        shots_used: dict[int, list[int]] = {}
        for doc_id, doc in enumerate(selected):
            prefix = self.description(doc, doc_id)
            if self.num_fewshot > 0:
                picked = self._sample(pool, self.num_fewshot, doc if exclude_eval else None, doc_id)
                shots_used[doc_id] = picked
                prefix += "".join(self._shot_text(pool[i], f"{source}[{i}]") for i in picked)
            items.append(self._item(doc, doc_id, prefix))
        info = BuildInfo(
            task=spec.task,
            split=split,
            seed=self.seed,
            num_fewshot=self.num_fewshot,
            sampler=self.sampler,
            fewshot_source=source,
            n_docs_in_split=n_total,
            doc_ids=list(range(len(selected))),
            fewshot_doc_ids=shots_used,
        )
        return BuiltTask(items=items, info=info)

    def _question(self, doc: dict, doc_id: int) -> str:
        q = self.text(doc, doc_id)
        if not isinstance(q, str):
            raise UserError(f"{self.where}: doc_to_text gave {type(q).__name__} on doc {doc_id}, not text")
        return q

    def _gold_index(self, value: Any, choices: list[Any], doc_id: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise UserError(
                f"{self.where}: doc {doc_id}: doc_to_target gave {value!r}, not an index or a choice"
            )
        if isinstance(value, str):
            if value not in choices:
                raise UserError(
                    f"{self.where}: doc {doc_id}: gold {value!r} is not one of the choices {choices!r}"
                )
            return choices.index(value)
        if not 0 <= value < len(choices):
            raise UserError(
                f"{self.where}: doc {doc_id}: gold index {value} is out of range for {len(choices)} choices"
            )
        return value

    def _item(self, doc: dict, doc_id: int, prefix: str) -> Item:
        spec = self.spec
        kind = spec.output_type
        if kind == "loglikelihood_rolling":
            count = PROCESS_RESULTS[spec.process_results](doc) if spec.process_results else ""
            return Item(doc_id=doc_id, output_type=kind, text=str(self.target(doc, doc_id)), count_text=count)
        if kind == "multiple_choice":
            choices = self.choice(doc, doc_id)
            if not choices:
                raise UserError(f"{self.where}: doc {doc_id}: doc_to_choice gave no choices")
            delim = spec.target_delimiter
            if self.multiple_input:
                gold = self._gold_index(self.text(doc, doc_id), choices, doc_id)
                cont = self.target(doc, doc_id)
                return Item(
                    doc_id=doc_id,
                    output_type=kind,
                    context="",
                    contexts=tuple(prefix + str(c) for c in choices),
                    continuations=(f"{delim}{cont}",),
                    choices=tuple(str(c) for c in choices),
                    gold=gold,
                )
            context = prefix + self._question(doc, doc_id)
            t = self.target(doc, doc_id)
            gold_value: int | tuple[int, ...]
            if isinstance(t, list):
                gold_value = tuple(self._gold_index(x, choices, doc_id) for x in t)
            else:
                gold_value = self._gold_index(t, choices, doc_id)
            return Item(
                doc_id=doc_id,
                output_type=kind,
                context=context,
                continuations=tuple(f"{delim}{c}" for c in choices),
                choices=tuple(str(c) for c in choices),
                gold=gold_value,
            )
        context = prefix + self._question(doc, doc_id)
        t = self.target(doc, doc_id)
        if kind == "loglikelihood":
            if isinstance(t, list):
                raise UserError(f"{self.where}: doc {doc_id}: a loglikelihood target must be one string")
            return Item(doc_id=doc_id, output_type=kind, context=context, continuations=(str(t),))
        # generate_until
        until, max_gen_toks = spec.generation_settings()
        gold: str | tuple[str, ...]
        if spec.doc_to_choice is not None:
            choices = self.choice(doc, doc_id)
            gold = str(choices[self._gold_index(t, choices, doc_id)])
        elif isinstance(t, list):
            gold = tuple(str(x) for x in t)
        else:
            gold = str(t)
        return Item(
            doc_id=doc_id,
            output_type=kind,
            context=context,
            until=until,
            max_gen_toks=max_gen_toks,
            gold=gold,
        )
