"""lm-eval's requests as the engine's `Item`s, and the engine's answers handed back to lm-eval to score.

The unit scheduler (any executor, item-level resume, exactly-once) needs every request known before a model
runs. `plan_items` runs lm-eval's own `simple_evaluate` once with a model that only records what it is asked
(its placeholder answers and that run's results are thrown away), so prompts, few-shot draws, limits and
request options are lm-eval's by construction, never a copy of its rules. Each document's requests become
one `Item`. Once the engine has answered, `replay_lm` gives lm-eval a model that answers from those results,
and lm-eval's `simple_evaluate` filters, scores and aggregates them as it would its own model's.

A document whose requests are not one `Item` (sampled generation, repeats, several contexts and several
continuations at once) makes its task lm-eval's to drive (`PlannedTask.items` is None).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.model import LM

from beyondscale.engine.requests import Item, ItemResult


def request_id(request_type: str, args: Sequence[Any]) -> str:
    """One request's content, as the key its answer is found under."""
    return json.dumps([request_type, *args], sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Request:
    """One of lm-eval's requests, as recorded."""

    doc_id: int
    idx: int
    request_type: str
    args: tuple
    repeats: int


@dataclass
class PlannedTask:
    """A leaf task's requests, per document in lm-eval's order (`idx`); `items` one per document in doc order,
    or None (see module)."""

    name: str
    requests: dict[int, list[Request]]
    items: list[Item] | None
    docs: dict[int, Any] = field(default_factory=dict, repr=False)


class RecordingLM(LM):
    """Answers nothing: keeps every request lm-eval asks and gives placeholders back."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Any] = []

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self.asked.extend(requests)
        return [(-1.0, False)] * len(requests)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        self.asked.extend(requests)
        return [-1.0] * len(requests)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self.asked.extend(requests)
        return [""] * len(requests)


class ReplayLM(LM):
    """Answers each request from `answers` ({request_id: answer}); a request never answered is a bug here."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__()
        self.answers = answers

    def _replay(self, request_type: str, requests: list[Any]) -> list[Any]:
        out = []
        for request in requests:
            key = request_id(request_type, request.args)
            if key not in self.answers:
                raise RuntimeError(f"lm-eval asked {request_type} for document {request.doc_id} of "
                                   f"{request.task_name}, which was not planned (the replay differs from the plan)")
            out.append(self.answers[key])
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return [(float(a[0]), bool(a[1])) for a in self._replay("loglikelihood", requests)]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return [float(a) for a in self._replay("loglikelihood_rolling", requests)]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        return [str(a) for a in self._replay("generate_until", requests)]


@contextlib.contextmanager
def _without_env_info() -> Iterator[None]:
    """simple_evaluate ends by collecting the machine's description for its results file (torch's collect_env:
    `pip list` and a dozen more subprocesses, ~0.7 s, 93% of a recording's time); a recording or a replay has
    no results file, so it is skipped there."""
    import lm_eval.evaluator as lm_eval_evaluator

    saved = lm_eval_evaluator.add_env_info
    lm_eval_evaluator.add_env_info = lambda storage: None
    try:
        yield
    finally:
        lm_eval_evaluator.add_env_info = saved


def plan_items(loaded: Any, run_kwargs: dict[str, Any], *, max_gen_toks: int = 256) -> dict[str, PlannedTask]:
    """Every leaf task's requests as lm-eval builds them for `run_kwargs` (simple_evaluate's), and its Items."""
    from beyondscale.tasks.harness import run_harness

    recorder = RecordingLM()
    with _without_env_info():
        run_harness(recorder, loaded, **{**run_kwargs, "log_samples": False, "bootstrap_iters": 0})
    by_task: dict[str, dict[int, list[Request]]] = {name: {} for name in loaded.tasks}
    docs: dict[str, dict[int, Any]] = {name: {} for name in loaded.tasks}
    for inst in recorder.asked:
        request = Request(int(inst.doc_id), int(inst.idx), inst.request_type, tuple(inst.args), int(inst.repeats or 1))
        by_task.setdefault(inst.task_name, {}).setdefault(request.doc_id, []).append(request)
        docs.setdefault(inst.task_name, {})[request.doc_id] = inst.doc
    out = {}
    for name, requests in by_task.items():
        for doc_requests in requests.values():
            doc_requests.sort(key=lambda r: r.idx)
        items = [doc_item(doc_id, requests[doc_id], max_gen_toks) for doc_id in sorted(requests)]
        out[name] = PlannedTask(name, requests, None if any(i is None for i in items) else items, docs[name])
    return out


def gold_texts(loaded: Any, run_kwargs: dict[str, Any]) -> list[str]:
    """Each document as a model reads it when right: a multiple-choice context with its gold continuation, a
    generation task's context, a perplexity task's document (what the logit lens reads)."""
    texts = []
    for name, planned in plan_items(loaded, run_kwargs).items():
        task = loaded.tasks[name]
        for doc_id, requests in sorted(planned.requests.items()):
            first = requests[0]
            if first.request_type == "loglikelihood":
                gold = _gold_index(task, planned.docs[doc_id])
                gold_request = requests[gold] if gold < len(requests) else first
                texts.append(gold_request.args[0] + gold_request.args[1])
            else:
                texts.append(first.args[0])
    return texts


def _gold_index(task: Any, doc: Any) -> int:
    gold = task.doc_to_target(doc)
    if isinstance(gold, list):
        gold = gold[0] if gold else 0
    if isinstance(gold, str):
        choices = task.doc_to_choice(doc) if task.config.doc_to_choice is not None else []
        gold = choices.index(gold) if gold in choices else (int(gold) if gold.isdigit() else 0)
    return int(gold)


def doc_item(doc_id: int, requests: list[Request], max_gen_toks: int = 256) -> Item | None:
    """One document's requests as one engine Item, or None when they are not one."""
    if not requests or any(r.repeats != 1 for r in requests) or len({r.request_type for r in requests}) != 1:
        return None
    kind = requests[0].request_type
    if kind == "loglikelihood":
        contexts = [r.args[0] for r in requests]
        continuations = [r.args[1] for r in requests]
        if len(set(contexts)) == 1:
            return Item(doc_id, "multiple_choice", context=contexts[0], continuations=tuple(continuations))
        if len(set(continuations)) == 1:  # partial evaluation (winogrande): one context per choice
            return Item(doc_id, "multiple_choice", contexts=tuple(contexts), continuations=(continuations[0],))
        return None
    if kind == "loglikelihood_rolling" and len(requests) == 1:
        return Item(doc_id, "loglikelihood_rolling", text=requests[0].args[0])
    if kind == "generate_until" and len(requests) == 1:
        return _greedy_item(doc_id, requests[0], max_gen_toks)
    return None


def _greedy_item(doc_id: int, request: Request, max_gen_toks: int) -> Item | None:
    from beyondscale.engine.lm_eval_model import parse_gen_kwargs

    context, gen_kwargs = request.args
    until, max_gen, _, greedy = parse_gen_kwargs(gen_kwargs, max_gen_toks)
    if not greedy:
        return None  # sampled: lm-eval drives it (engine.sampled)
    return Item(doc_id, "generate_until", context=context, until=until, max_gen_toks=max_gen)


def answers_of(item: Item, result: ItemResult) -> list[Any]:
    """lm-eval's answers to one document's requests (in their order) from the engine's result for its Item."""
    if item.output_type == "multiple_choice":
        return [(float(lp), bool(greedy)) for lp, greedy in zip(result.logprobs, result.is_greedy, strict=True)]
    if item.output_type == "loglikelihood_rolling":
        return [float(result.logprobs[0])]
    return [result.generation or ""]


def score_planned(loaded: Any, planned: PlannedTask, results: Sequence[ItemResult], run_kwargs: dict[str, Any]
                  ) -> dict[str, Any]:
    """lm-eval's results dict (`results`, `samples`, ...) for one planned task, its requests answered by the
    engine's `results` (one per Item, in order): lm-eval filters, scores and aggregates them."""
    from beyondscale.tasks.harness import HarnessTasks, run_harness

    if planned.items is None:
        raise ValueError(f"task {planned.name}: its documents are not one Item each; lm-eval drives it")
    answers: dict[str, Any] = {}
    for item, result in zip(planned.items, results, strict=True):
        requests = planned.requests[item.doc_id]
        answers.update({request_id(r.request_type, r.args): answer
                        for r, answer in zip(requests, answers_of(item, result), strict=True)})
    task = loaded.tasks[planned.name]
    one = HarnessTasks({planned.name: task}, {}, {}, [task], loaded.manager)
    with _without_env_info():
        return run_harness(ReplayLM(answers), one, **{**run_kwargs, "log_samples": True})
