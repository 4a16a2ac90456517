"""beyondscale's engine as an lm-evaluation-harness model: `lm_eval --model beyondscale`.

    import beyondscale.engine.lm_eval_model          # registers "beyondscale" in lm-eval's model registry
    lm_eval.simple_evaluate(model="beyondscale", model_args="pretrained=path/to/model", tasks=[...])
    beyondscale-lm-eval --model beyondscale --model_args pretrained=... --tasks ...   # lm-eval's CLI, registered

lm-eval builds the requests (prompts, few-shot, chat templates) and scores the answers (filters,
metrics, groups); this model answers them with the engine: log-likelihood requests of one context are
scored together (the context runs once, engine.scoring), a token prefix shared across documents (few-shot
examples) is computed once and its KV cache reused (engine.prefix_cache; `prefix_cache=False` turns it off), rolling log-likelihoods in lm-eval's windows,
greedy generation with the engine's decoder, other generation options (sampling included) through
`model.generate` as lm-eval's HF backend runs it (engine.sampled). Answers equal `--model hf`'s up to
float rounding.

Each answer can be kept in a `request_cache` keyed by (model key, request content) - any mapping, or
an object with `get_many(keys)` / `put_many(pairs)` - written after every engine batch, so a re-run or
a resumed run computes only the requests it lacks. Sampled requests are never cached (as lm-eval's
own `--use_cache`): their repeats must differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lm_eval.models  # noqa: F401 - lm-eval's own models first: it imports them only into an empty registry
from lm_eval.api.model import LM, TemplateLM
from lm_eval.api.registry import register_model

from beyondscale.engine.engine import Engine
from beyondscale.engine.requests import Item, ItemResult
from beyondscale.errors import UserError

GREEDY_KEYS = frozenset({"do_sample", "temperature", "top_p", "top_k"})  # no effect when do_sample is False
IGNORED_ARGS = frozenset({"max_batch_size", "parallelize", "backend", "use_fast_tokenizer", "truncation",
                          "logits_cache"})


def request_key(model_key: str, request_type: str, args: Sequence[Any]) -> str:
    """Content key of one request for one model (lm-eval's `hash_args`, with the model key in front)."""
    blob = json.dumps([model_key, request_type, *args], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def parse_gen_kwargs(gen_kwargs: dict[str, Any], default_max_gen_toks: int
                     ) -> tuple[tuple[str, ...], int, dict[str, Any], bool]:
    """lm-eval's generation options as (stop strings, max new tokens, the other options, greedy?): greedy when
    nothing asks for sampling and no option beyond the greedy-inert ones is set (the engine's own decoder)."""
    from lm_eval.models.utils import normalize_gen_kwargs

    kwargs = normalize_gen_kwargs(dict(gen_kwargs), default_max_gen_toks)
    until = tuple(kwargs.pop("until") or ())
    max_gen = kwargs.pop("max_gen_toks")
    return until, max_gen, kwargs, not kwargs.get("do_sample") and set(kwargs) <= GREEDY_KEYS


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


@register_model("beyondscale")
class BeyondscaleLM(LM):
    """An `lm_eval.api.model.LM` answered by beyondscale's Engine."""

    def __init__(self, pretrained: str | None = None, *, engine: Engine | None = None, dtype: str = "auto",
                 device: str | None = "auto", batch_size: int | str | None = "auto", max_length: int | None = None,
                 add_bos_token: bool | None = None, trust_remote_code: bool = False, revision: str | None = None,
                 max_gen_toks: int = 256, model_key: str | None = None, request_cache: Any = None,
                 batch_context: Callable[[], Any] | None = None, prefix_cache: bool = True,
                 **unknown: Any) -> None:
        super().__init__()
        bad = sorted(set(unknown) - IGNORED_ARGS)
        if bad:
            raise UserError(f"--model_args: beyondscale does not take {', '.join(bad)}")
        if engine is None:
            if not pretrained:
                raise UserError("--model_args: pretrained=PATH_OR_HUB_ID is required for --model beyondscale")
            engine, model_key = _load_engine(str(pretrained), revision, dtype, _device_as_hflm(device), batch_size,
                                             max_length, _as_bool(add_bos_token), _as_bool(trust_remote_code))
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self._device = engine.device
        self.model_key = model_key or "unkeyed"
        self.max_gen_toks = int(max_gen_toks)
        self.request_cache = request_cache
        self.batch_context = batch_context
        self.prefix_cache = _as_bool(prefix_cache)
        self.usage = {"tokens_in": 0, "tokens_out": 0, "flops": 0.0, "requests_computed": 0, "requests_cached": 0}

    # ---- the request cache -----------------------------------------------------------------------
    def _cached(self, keys: list[str]) -> dict[str, Any]:
        cache = self.request_cache
        if cache is None:
            return {}
        if hasattr(cache, "get_many"):
            return dict(cache.get_many(keys))
        return {k: cache[k] for k in keys if k in cache}

    def _store(self, pairs: list[tuple[str, Any]]) -> None:
        if self.request_cache is None or not pairs:
            return
        if hasattr(self.request_cache, "put_many"):
            self.request_cache.put_many(pairs)
        else:
            for key, value in pairs:
                self.request_cache[key] = value

    def _answer(self, request_type: str, args: list[tuple], compute: Callable[[list[tuple]], Iterator[dict]],
                cacheable: Callable[[tuple], bool] = lambda a: True) -> list[Any]:
        """Answers in the order asked: cached ones looked up, the rest computed batch by batch and stored."""
        keys = [request_key(self.model_key, request_type, a) for a in args]
        found = self._cached(sorted({k for k, a in zip(keys, args, strict=True) if cacheable(a)}))
        todo = list(dict.fromkeys(a for k, a in zip(keys, args, strict=True) if k not in found))
        self.usage["requests_cached"] += len(args) - sum(1 for k in keys if k not in found)
        answers: dict[tuple, Any] = {}
        for batch in compute(todo) if todo else ():
            answers.update(batch)
            self._store([(request_key(self.model_key, request_type, a), v) for a, v in batch.items() if cacheable(a)])
            self.usage["requests_computed"] += len(batch)
        out = [found[k] if k in found else answers[a] for k, a in zip(keys, args, strict=True)]
        for a, value in zip(args, out, strict=True):
            self.cache_hook.add_partial(request_type, a, value)
        return out

    # ---- running the engine ----------------------------------------------------------------------
    def _run_items(self, items: list[Item], prefix: bool = False) -> Iterator[list[tuple[Item, ItemResult]]]:
        """(item, result) pairs batch by batch, each batch inside `batch_context` (a meter)."""
        if prefix:
            from beyondscale.engine.prefix_cache import run_with_prefix_cache

            source = run_with_prefix_cache(self.engine, items)
        else:
            source = (list(zip(b, self.engine.run_batch(b), strict=True)) for b in self.engine.plan(items))
        while True:
            with self.batch_context() if self.batch_context else contextlib.nullcontext() as meter:
                pairs = next(source, None)
                if pairs is None:
                    return
                results = [r for _, r in pairs]
                tokens_in, tokens_out = sum(r.tokens_in for r in results), sum(r.tokens_out for r in results)
                flops = sum(r.flops or 0.0 for r in results)
                if meter is not None and hasattr(meter, "add_tokens"):
                    meter.add_tokens(tokens_in, tokens_out)
                    meter.add_flops(flops)
            self.usage["tokens_in"] += tokens_in
            self.usage["tokens_out"] += tokens_out
            self.usage["flops"] += flops
            yield pairs

    def _loglikelihood_batches(self, args: list[tuple]) -> Iterator[dict]:
        by_context: dict[str, list[str]] = {}
        for context, continuation in args:
            by_context.setdefault(context, [])
            if continuation not in by_context[context]:
                by_context[context].append(continuation)
        items = [Item(i, "multiple_choice", context=c, continuations=tuple(conts))
                 for i, (c, conts) in enumerate(by_context.items())]
        for batch in self._run_items(items, prefix=self.prefix_cache):
            yield {(it.context, cont): (float(lp), bool(greedy)) for it, res in batch
                   for cont, lp, greedy in zip(it.continuations, res.logprobs, res.is_greedy, strict=True)}

    def _rolling_batches(self, args: list[tuple]) -> Iterator[dict]:
        items = [Item(i, "loglikelihood_rolling", text=a[0]) for i, a in enumerate(args)]
        for batch in self._run_items(items):
            yield {(it.text,): float(res.logprobs[0]) for it, res in batch}

    def _generate_batches(self, args: list[tuple]) -> Iterator[dict]:
        greedy, other = [], {}
        for context, gen_kwargs in args:
            until, max_gen, kwargs, is_greedy = parse_gen_kwargs(gen_kwargs, self.max_gen_toks)
            if is_greedy:
                greedy.append((Item(len(greedy), "generate_until", context=context, until=until, max_gen_toks=max_gen),
                               (context, gen_kwargs)))
            else:
                spec = json.dumps([list(until), max_gen, kwargs], sort_keys=True, default=str)
                other.setdefault(spec, []).append((context, gen_kwargs))
        if greedy:
            key_of = {item: a for item, a in greedy}
            for batch in self._run_items([item for item, _ in greedy]):
                yield {key_of[it]: res.generation for it, res in batch}
        for spec, group in other.items():
            yield self._sampled(spec, group)

    def _sampled(self, spec: str, group: list[tuple]) -> dict:
        from beyondscale.engine.sampled import hf_generate

        until, max_gen, kwargs = json.loads(spec)
        eos = self.engine.eos_str
        stops = [*until, eos] if eos is not None and eos not in until else list(until)
        size = self.engine.batch_size if isinstance(self.engine.batch_size, int) else 8
        texts = hf_generate(self.engine, [c for c, _ in group], kwargs, stops, max_gen, size)
        return {a: t for a, t in zip(group, texts, strict=True)}

    # ---- lm-eval's interface ---------------------------------------------------------------------
    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        answers = self._answer("loglikelihood", [tuple(r.args) for r in requests], self._loglikelihood_batches)
        return [(float(a[0]), bool(a[1])) for a in answers]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        return [float(a) for a in self._answer("loglikelihood_rolling", [tuple(r.args) for r in requests],
                                              self._rolling_batches)]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        args = [(r.args[0], _Frozen(r.args[1])) for r in requests]
        return self._answer("generate_until", args, self._generate_batches,
                            cacheable=lambda a: not a[1].get("do_sample", False))

    # ---- chat templates, as lm-eval's HF backend -------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name_or_path.replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return TemplateLM.chat_template(self, chat_template)  # reads self.tokenizer only

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def get_model_info(self) -> dict[str, Any]:
        model = self.engine.model
        return {"model_num_parameters": sum(p.numel() for p in model.parameters()),
                "model_dtype": str(next(model.parameters()).dtype), "beyondscale_model_key": self.model_key}


class _Frozen(dict):
    """A gen_kwargs dict usable as a key (requests with equal options are one request)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(json.dumps(self, sort_keys=True, default=str))


def _device_as_hflm(device: str | None) -> str:
    """lm-eval passes its default `cuda:0`; as its HF backend does, a device this machine lacks means 'pick one'."""
    import torch

    if not device or (str(device).startswith("cuda") and not torch.cuda.is_available()):
        return "auto"
    return str(device)


def _load_engine(pretrained: str, revision: str | None, dtype: str, device: str, batch_size: Any,
                 max_length: Any, add_bos_token: bool | None, trust_remote_code: bool | None) -> tuple[Engine, str]:
    from beyondscale.models import load_model, model_key, parse_model_ref
    from beyondscale.models.load import resolve_dtype

    spec = f"{pretrained}@{revision}" if revision and revision != "main" else pretrained
    ref = parse_model_ref(spec)
    identity = ref.identity()
    loaded = load_model(ref, dtype=dtype, device=device, trust_remote_code=bool(trust_remote_code), identity=identity)
    size: int | str = "auto" if batch_size in (None, "auto") or str(batch_size).startswith("auto") else int(batch_size)
    engine = Engine(loaded.model, loaded.tokenizer, batch_size=size,
                    max_length=int(max_length) if max_length else None, add_bos_token=add_bos_token)
    return engine, model_key(ref, resolve_dtype(dtype, loaded.device), identity)


def lm_eval_cli() -> None:
    """lm-eval's own command line with `--model beyondscale` registered (console script beyondscale-lm-eval)."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
