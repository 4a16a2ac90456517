"""`bench`: generation speed as llama-bench / optimum-benchmark report it; rows are also stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from beyondscale.errors import UserError
from beyondscale.evaluator.keys import model_key_for
from beyondscale.evaluator.settings import EvalSettings
from beyondscale.store import DEFAULT_STORE

if TYPE_CHECKING:
    from beyondscale.executors import Executor


def bench(
    models: Sequence[str],
    *,
    prompt_tokens: Sequence[int] = (128, 512),
    new_tokens: int = 128,
    repetitions: int = 5,
    warmup: int = 1,
    store: str | Path = DEFAULT_STORE,
    settings: EvalSettings | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """Generation speed as llama-bench / optimum-benchmark report it; rows are also stored.

    Each model is one job (here, or a Ray task with `executor`); this process alone writes the store.
    """
    from beyondscale import measure
    from beyondscale.executors import LocalExecutor
    from beyondscale.executors.jobs import map_jobs, raise_failures
    from beyondscale.models import parse_model_ref
    from beyondscale.store import Store

    settings = settings or EvalSettings()
    if not models:
        raise UserError("--model: give at least one model")
    if not prompt_tokens or any(int(n) < 1 for n in prompt_tokens):
        raise UserError(f"--prompt-tokens {','.join(map(str, prompt_tokens))}: expected positive integers")
    if new_tokens < 1 or repetitions < 1 or warmup < 0:
        raise UserError("--new-tokens and --repetitions must be >= 1, --warmup >= 0")
    executor = executor or LocalExecutor()
    device = executor.resolve_device(settings.device)
    refs = [parse_model_ref(m) for m in models]
    db = Store(store)
    environment = measure.environment()
    run_id = db.start_run("bench", {"models": list(models), "prompt_tokens": list(prompt_tokens),
                                    "new_tokens": new_tokens, "repetitions": repetitions, **asdict(settings)},
                          environment)
    lengths = [int(n) for n in prompt_tokens]
    jobs = [_bench_job(i, ref, settings, device, executor, (lengths, new_tokens, repetitions, warmup))
            for i, ref in enumerate(refs)]
    done = {}
    for outcome in map_jobs(executor, jobs):
        done[outcome.name] = outcome
        if outcome.ok:
            key, identity, facts, rows, env_key = outcome.value  # env_key: the machine that ran it
            ref = refs[int(outcome.name)]
            db.put_model(key, ref.name, settings.family, ref.to_dict(), identity, facts)
            for row in rows:
                db.put_benchmark(run_id, key, row, env_key)
    failed = [r for r in done.values() if not r.ok]
    db.finish_run(run_id, "failed" if failed else "done")
    db.close()
    raise_failures([replace(r, name=refs[int(r.name)].name) for r in failed], "bench")
    return pd.DataFrame([{"model": refs[i].name, **row} for i in range(len(refs)) for row in done[str(i)].value[3]])


def _bench_job(index: int, ref: Any, settings: EvalSettings, device: str, executor: Any, plan: tuple) -> Any:
    """The model's benchmark as a job with the resources it asks Ray for (named by its position)."""
    from beyondscale.executors.jobs import Job
    from beyondscale.executors.resources import model_resources

    opts = model_resources(ref, settings.dtype, device, executor.resources)
    return Job(str(index), _bench_model, (ref, settings, device, *plan), num_cpus=opts["num_cpus"],
               num_gpus=opts["num_gpus"], memory_bytes=int(opts["memory"]))


def _bench_model(ref: Any, settings: EvalSettings, device: str, prompt_tokens: list[int], new_tokens: int,
                 repetitions: int, warmup: int) -> tuple[str, str, dict, list[dict], str]:
    """One model's generation benchmark, pure (no store): (model key, identity, facts, rows, environment)."""
    from beyondscale import measure
    from beyondscale.models import load_model

    identity = ref.identity()
    key = model_key_for(ref, identity, settings, device)
    meter = measure.Meter(device=device, cpu_watts=settings.cpu_watts)  # peak memory above this baseline
    loaded = load_model(ref, dtype=settings.dtype, device=device, trust_remote_code=settings.trust_remote_code,
                        identity=identity)
    max_ctx = loaded.facts.max_context or 10**9
    for n in prompt_tokens:
        if n + new_tokens > max_ctx:
            raise UserError(f"--prompt-tokens {n} + --new-tokens {new_tokens} exceed {ref.name}'s context "
                            f"({max_ctx})")
    rows = measure.bench_generation(loaded.model, loaded.tokenizer, prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                                    repetitions=repetitions, warmup=warmup, meter=meter, seed=settings.seed)
    return key, identity, loaded.facts.to_dict(), rows, measure.environment().get("environment_key", "")
