"""Generation with options beyond greedy decoding (sampling, beams, penalties), as lm-eval's HF backend runs it.

lm-eval's `HFLM.generate_until` calls `model.generate` on a left-padded batch with its stop-string
criterion, `max_length` = padded prompt width + `max_gen_toks`, and the task's remaining options
passed through; it then decodes the new tokens and cuts them at the first stop string. Greedy
requests take the engine's own decoder (engine.generate); everything else comes here, so a task's
`do_sample`, `temperature`, `top_p`, `num_beams`, `repetition_penalty`, ... mean what they mean in
lm-eval. Sampled text depends on the random state and on the batch, as it does in lm-eval.
"""

from __future__ import annotations

from typing import Any

import torch


@torch.inference_mode()
def hf_generate(engine: Any, contexts: list[str], kwargs: dict[str, Any], until: list[str],
                max_gen_toks: int, batch_size: int = 8) -> list[str]:
    """Texts generated for `contexts` (one `gen_kwargs` set), in order; `until` includes the EOS string."""
    from lm_eval.models.utils import postprocess_generated_text
    from lm_eval.models.utils_hf import stop_sequences_criteria

    max_ctx = engine.max_length - max_gen_toks
    encoded = [engine.tok.encode_generation_context(c)[-max_ctx:] or [engine.tok.prefix_token_id] for c in contexts]
    order = sorted(range(len(contexts)), key=lambda i: (-len(encoded[i]), contexts[i]))
    out: list[str] = [""] * len(contexts)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in rows)
        ids = torch.full((len(rows), width), engine.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[r, width - len(encoded[i]):] = 1
        options = dict(kwargs)
        if options.get("do_sample") is False and options.get("temperature") == 0.0:
            options.pop("temperature")  # as HFLM._model_generate: greedy needs no temperature
        max_length = options.pop("max_length", width + max_gen_toks)
        generated = engine.model.generate(
            input_ids=ids.to(engine.device), attention_mask=mask.to(engine.device), max_length=max_length,
            stopping_criteria=stop_sequences_criteria(engine.tokenizer, until, width, len(rows)),
            pad_token_id=engine.pad_id, use_cache=True, **options)
        for r, i in enumerate(rows):
            text = engine.tokenizer.decode(generated[r, width:].tolist(), skip_special_tokens=True)
            out[i] = postprocess_generated_text(text, until, None)
    return out
