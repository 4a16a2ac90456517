"""The engine against a naive reference: one plain forward per request, full-vocabulary log_softmax.

The reference re-implements lm-evaluation-harness's HF backend rules directly (its _encode_pair,
empty-context prefix token, left truncation, get_rolling_token_windows + make_disjoint_window,
greedy decoding without a cache) so the engine's shared prefixes, logits_to_keep, padding and
batching are checked against the simplest possible computation.
"""

from __future__ import annotations

import pytest
import torch

from _tiny_models import corpus, tiny_gemma3, tiny_gpt2, tiny_llama, tiny_tokenizer
from beyondscale.engine import Engine, Item

TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and OpenMP spin-waits on a busy 2-core box cost 10-50x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- the naive reference -------------------------------------------------------------------------


def ref_encode(tok, s, add_special_tokens=None):
    kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if add_special_tokens is None and s.startswith(tok.decode(prefix)):
        kw = {"add_special_tokens": False}
    return tok.encode(s, **kw)


def ref_pair(tok, context, continuation):
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if context == "":
        cont = ref_encode(tok, continuation, add_special_tokens=False)
        return ([prefix], cont) if cont[0] != prefix else (cont[:1], cont[1:])
    n = len(context) - len(context.rstrip())
    if n:
        continuation, context = context[-n:] + continuation, context[:-n]
    whole, ctx = ref_encode(tok, context + continuation), ref_encode(tok, context)
    return ctx, whole[len(ctx) :]


@torch.no_grad()
def ref_tokens(model, ctx, cont, max_length):
    inp = (ctx + cont)[-(max_length + 1) :][:-1]
    logp = torch.log_softmax(model(torch.tensor([inp])).logits[0].float(), -1)[-len(cont) :]
    target = torch.tensor(cont)
    lp = float(logp.gather(1, target[:, None]).sum())
    return lp, bool((logp.argmax(-1) == target).all())


def get_rolling_token_windows(token_list, prefix_token, max_seq_len, context_len):
    # verbatim logic of lm_eval.utils.get_rolling_token_windows
    if not token_list:
        return
    pred_len = max_seq_len - context_len + 1
    predicted = 0
    first_seq_len = min(max_seq_len, len(token_list))
    yield [prefix_token] + token_list[: first_seq_len - 1], token_list[:first_seq_len]
    predicted += first_seq_len
    while predicted < len(token_list):
        window_pred_len = min(len(token_list) - predicted, pred_len)
        window_end = predicted + window_pred_len
        yield (
            token_list[window_end - max_seq_len - 1 : window_end - 1],
            token_list[window_end - window_pred_len : window_end],
        )
        predicted += window_pred_len


def make_disjoint_window(pair):
    a, b = pair
    return a[: len(a) - (len(b) - 1)], b


def ref_rolling(model, tok, text, max_length):
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    tokens = ref_encode(tok, text)
    windows = [make_disjoint_window(w) for w in get_rolling_token_windows(tokens, prefix, max_length, 1)]
    return sum(ref_tokens(model, c, t, max_length)[0] for c, t in windows), len(tokens), len(windows)


@torch.no_grad()
def ref_generate(model, tok, context, until, max_gen_toks, max_length):
    ids = tok(context)["input_ids"][-(max_length - max_gen_toks) :]
    eos = tok.decode(tok.eos_token_id, skip_special_tokens=False)
    stops = list(until) + ([eos] if eos not in until else [])
    out = []
    while len(out) < max_gen_toks:
        nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
        out.append(nxt)
        if nxt == tok.eos_token_id or any(s in tok.decode(out, skip_special_tokens=False) for s in stops):
            break
    text = tok.decode(out, skip_special_tokens=True)
    for s in stops:
        text = text.split(s)[0]
    return text


def ref_result(model, tok, item, max_length):
    """(logprobs, is_greedy, n_tokens) the way lm-eval computes them, one request at a time."""
    if item.output_type == "loglikelihood_rolling":
        lp, n, _ = ref_rolling(model, tok, item.text, max_length)
        return [lp], None, [n]
    if item.contexts:
        pairs = [ref_pair(tok, c, item.continuations[0]) for c in item.contexts]
    else:
        pairs = [ref_pair(tok, item.context, c) for c in item.continuations]
    scored = [ref_tokens(model, c, t, max_length) for c, t in pairs]
    return [s[0] for s in scored], [s[1] for s in scored], [len(t) for _, t in pairs]


# ---- items ------------------------------------------------------------------------------------------

FEWSHOT = "Question: the cat sat on the mat?\nAnswer: yes\n\n"


def mc_items() -> list[Item]:
    lines = corpus(40, seed=3)
    items = []
    for i in range(12):
        ctx = (FEWSHOT if i % 2 else "") + f"Question: {lines[i]}\nAnswer:"
        conts = (" the cat", " the dog ran", " a", " blue river water under the sun")[: 2 + i % 3]
        items.append(Item(i, "multiple_choice", context=ctx, continuations=conts, choices=conts, gold=0))
    # trailing whitespace moves into the continuation; empty context uses the prefix token
    items.append(Item(20, "multiple_choice", context="The fox jumped ", continuations=("over", "under")))
    items.append(Item(21, "loglikelihood", context="", continuations=("The quick fox.",)))
    items.append(Item(22, "loglikelihood", context=lines[20], continuations=(" It was slow.",)))
    for i in range(3):  # winogrande-style partial evaluation: one context per choice
        a, b = lines[30 + i].split(" ", 1)[0], "Maria"
        items.append(
            Item(
                40 + i,
                "multiple_choice",
                contexts=(f"{lines[25 + i]} Then {a}", f"{lines[25 + i]} Then {b}"),
                continuations=(" went to the house.",),
                choices=(a, b),
                gold=0,
            )
        )
    return items


def rolling_items() -> list[Item]:
    lines = corpus(60, seed=5)
    return [
        Item(100 + i, "loglikelihood_rolling", text=" ".join(lines[i * 5 : i * 5 + 1 + i])) for i in range(6)
    ]


def gen_items() -> list[Item]:
    lines = corpus(20, seed=7)
    return [
        Item(
            200 + i,
            "generate_until",
            context=lines[i],
            until=(".", "\n") if i % 2 else ("!",),
            max_gen_toks=6 + i,
        )
        for i in range(6)
    ]


MODELS = {"llama": tiny_llama, "gpt2": tiny_gpt2, "gemma3": tiny_gemma3}


def _tok(name):
    return tiny_tokenizer(bos_by_default=name == "gemma3")


# ---- (1) engine == naive reference -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("max_length", [128, 16])
def test_scoring_matches_naive_reference(name, max_length):
    model, tok = MODELS[name](), _tok(name)
    items = mc_items() + rolling_items()
    results = Engine(model, tok, max_length=max_length).run(items)
    for item, res in zip(items, results, strict=True):
        lps, greedy, n_tokens = ref_result(model, tok, item, max_length)
        assert res.doc_id == item.doc_id
        assert res.n_tokens == n_tokens
        assert res.logprobs == pytest.approx(lps, abs=TOL), item
        if greedy is not None:
            assert res.is_greedy == greedy, item


def test_rolling_has_several_windows_at_max_length_16():
    tok = tiny_tokenizer()
    long_doc = rolling_items()[-1].text
    _, n, n_windows = ref_rolling(tiny_llama(), tok, long_doc, 16)
    assert n > 40 and n_windows >= 3


@pytest.mark.parametrize("name", list(MODELS))
def test_generation_matches_naive_loop(name):
    model, tok = MODELS[name](), _tok(name)
    items = gen_items()
    results = Engine(model, tok, max_length=64).run(items)
    for item, res in zip(items, results, strict=True):
        assert res.generation == ref_generate(model, tok, item.context, item.until, item.max_gen_toks, 64)
        assert 1 <= res.tokens_out <= item.max_gen_toks


def test_generation_truncates_context_to_leave_room():
    model, tok = tiny_llama(), tiny_tokenizer()
    item = Item(0, "generate_until", context=" ".join(corpus(10)), until=("\n",), max_gen_toks=8)
    res = Engine(model, tok, max_length=24).run([item])[0]
    assert res.tokens_in == 24 - 8
    assert res.generation == ref_generate(model, tok, item.context, item.until, 8, 24)


# ---- (2) batch-size invariance -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama", "gemma3"])
def test_results_do_not_depend_on_batch_size(name):
    model, tok = MODELS[name](), _tok(name)
    items = mc_items() + rolling_items() + gen_items()
    runs = [Engine(model, tok, max_length=32, batch_size=bs).run(items) for bs in (1, "auto", 3)]
    small = Engine(model, tok, max_length=32)
    small.token_budget = 40  # many tiny auto batches
    runs.append(small.run(items))
    base = runs[0]
    for other in runs[1:]:
        for a, b in zip(base, other, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=TOL)
            assert a.is_greedy == b.is_greedy
            assert a.generation == b.generation
            assert a.tokens_in == b.tokens_in
    argmax = [max(range(len(r.logprobs)), key=r.logprobs.__getitem__) for r in base if len(r.logprobs) > 1]
    for other in runs[1:]:
        assert argmax == [
            max(range(len(r.logprobs)), key=r.logprobs.__getitem__) for r in other if len(r.logprobs) > 1
        ]


def test_plan_groups_by_length_and_covers_every_item():
    model, tok = tiny_llama(), tiny_tokenizer()
    items = mc_items() + rolling_items() + gen_items()
    engine = Engine(model, tok, max_length=32)
    engine.token_budget = 200
    batches = engine.plan(items)
    assert sorted(id(it) for b in batches for it in b) == sorted(id(it) for it in items)
    assert len(batches) > 3
    assert all(len({it.output_type == "generate_until" for it in b}) == 1 for b in batches)


# ---- (3) out-of-memory halving ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, RuntimeError])
def test_oom_halves_the_batch_and_retries(monkeypatch, error):
    model, tok = tiny_llama(), tiny_tokenizer()
    items = mc_items() + rolling_items() + gen_items()
    expected = Engine(model, tok, max_length=32, batch_size=1).run(items)
    state = {"raised": 0}

    def flaky(real_forward):
        def flaky_forward(self, input_ids=None, **kwargs):
            if input_ids is not None and input_ids.shape[0] > 2 and state["raised"] < 3:
                state["raised"] += 1
                msg = (
                    "CUDA out of memory"
                    if error is torch.OutOfMemoryError
                    else "DefaultCPUAllocator: can't allocate memory"
                )
                raise error(msg)
            return real_forward(self, input_ids=input_ids, **kwargs)
        return flaky_forward

    # scoring runs the body (engine.head), generation the whole model
    for module in (model, model.base_model):
        monkeypatch.setattr(type(module), "forward", flaky(type(module).forward))
    engine = Engine(model, tok, max_length=32, batch_size=8)
    got = engine.run(items)
    assert state["raised"] == 3
    for a, b in zip(expected, got, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOL)
        assert a.is_greedy == b.is_greedy and a.generation == b.generation


def test_other_errors_are_not_swallowed(monkeypatch):
    model, tok = tiny_llama(), tiny_tokenizer()

    def broken(self, *args, **kwargs):
        raise ValueError("boom")

    for module in (model, model.base_model):  # scoring runs the body (engine.head)
        monkeypatch.setattr(type(module), "forward", broken)
    with pytest.raises(ValueError, match="boom"):
        Engine(model, tok).run(mc_items()[:4])


# ---- (4) stop sequences ------------------------------------------------------------------------------------


def ref_greedy_ids(model, tok, context, n, max_length):
    """The naive greedy loop's token ids (no cache, no stop strings; ends at EOS)."""
    ids, out = tok(context)["input_ids"][-(max_length - n):], []
    while len(out) < n and (not out or out[-1] != tok.eos_token_id):
        out.append(int(model(torch.tensor([ids + out])).logits[0, -1].argmax()))
    return out


def test_stop_strings_cut_generation():
    """Decoding stops at the first token whose text completes the stop string (lm-eval's rule), and the
    text is cut before it: both checked token by token against the naive greedy loop."""
    model, tok = tiny_llama(), tiny_tokenizer()
    ctx = corpus(1, seed=11)[0]
    ids = ref_greedy_ids(model, tok, ctx, 12, 64)
    text = tok.decode(ids, skip_special_tokens=True)
    assert len(ids) == 12 and tok.eos_token_id not in ids and len(text) >= 4  # the free run uses its budget
    free = Engine(model, tok, max_length=64).run([Item(0, "generate_until", context=ctx, max_gen_toks=12)])[0]
    assert free.tokens_out == 12 and free.generation == text
    stop = text[2:4]  # a stop string that occurs in the free generation
    first = next(k for k in range(1, 13) if stop in tok.decode(ids[:k], skip_special_tokens=False))
    assert first < 12  # so stopping early is visible
    cut = Engine(model, tok, max_length=64).run(
        [Item(0, "generate_until", context=ctx, until=(stop,), max_gen_toks=12)])[0]
    assert cut.tokens_out == first  # decoding stopped at that token, not just the text
    assert cut.generation == text.split(stop)[0] and stop not in cut.generation


# ---- semantics details ----------------------------------------------------------------------------------


def test_shared_context_is_run_once():
    model, tok = tiny_llama(), tiny_tokenizer()
    ctx = "Question: the cat sat on the mat?\nAnswer:"
    item = Item(0, "multiple_choice", context=ctx, continuations=(" yes", " no", " the dog ran"))
    res = Engine(model, tok).run([item])[0]
    n_ctx = len(tok.encode(ctx))
    # context once, plus each continuation's tokens but its last (never an input)
    assert res.tokens_in == n_ctx + sum(n - 1 for n in res.n_tokens)


def test_add_bos_token_follows_tokenizer_default_and_can_be_forced():
    model = tiny_llama()
    plain, with_bos = tiny_tokenizer(), tiny_tokenizer(bos_by_default=True)
    item = Item(0, "loglikelihood", context="The cat sat", continuations=(" on the mat.",))
    forced = Engine(model, plain, add_bos_token=True).run([item])[0]
    default_bos = Engine(model, with_bos).run([item])[0]
    assert forced.logprobs == pytest.approx(default_bos.logprobs, abs=TOL)
    assert forced.tokens_in == Engine(model, plain).run([item])[0].tokens_in + 1
    off = Engine(model, with_bos, add_bos_token=False).run([item])[0]
    assert off.logprobs == pytest.approx(Engine(model, plain).run([item])[0].logprobs, abs=TOL)


def test_max_length_defaults_like_lm_eval():
    assert Engine(tiny_gpt2(), tiny_tokenizer()).max_length == 128
    assert Engine(tiny_llama(), tiny_tokenizer()).max_length == 128
    assert Engine(tiny_llama(), tiny_tokenizer(), max_length=16).max_length == 16


@torch.no_grad()
def test_rolling_stride_scores_each_token_once_with_long_context():
    model, tok = tiny_llama(), tiny_tokenizer()
    text = rolling_items()[-1].text
    L, stride = 16, 5
    res = Engine(model, tok, max_length=L, rolling_stride=stride).run(
        [Item(0, "loglikelihood_rolling", text=text)]
    )[0]
    seq = [tok.bos_token_id, *ref_encode(tok, text)]
    total, start, n = 0.0, 0, len(seq) - 1
    while start < n:
        end = min(n, L if start == 0 else start + stride)
        window = seq[max(0, end - L) : end + 1]
        lp = torch.log_softmax(model(torch.tensor([window[:-1]])).logits[0], -1)
        total += float(lp[-(end - start) :].gather(1, torch.tensor(window[-(end - start) :])[:, None]).sum())
        start = end
    assert res.logprobs[0] == pytest.approx(total, abs=TOL)
    assert res.n_tokens == [n]
    default = Engine(model, tok, max_length=L).run([Item(0, "loglikelihood_rolling", text=text)])[0]
    assert default.logprobs[0] == pytest.approx(ref_rolling(model, tok, text, L)[0], abs=TOL)
    assert res.logprobs[0] != pytest.approx(default.logprobs[0], abs=TOL)


@pytest.mark.parametrize("mode", ["int", "none"])
def test_older_logits_to_keep_conventions_give_the_same_scores(mode):
    """transformers < 5 takes only an int logits_to_keep; some remote-code models take none."""
    model, tok = tiny_llama(), tiny_tokenizer()
    items = mc_items() + rolling_items()[:2]
    engine = Engine(model, tok, max_length=128)
    engine.scorer.mode, engine.scorer.head = mode, None
    for item, res in zip(items, engine.run(items), strict=True):
        lps, greedy, _ = ref_result(model, tok, item, 128)
        assert res.logprobs == pytest.approx(lps, abs=TOL)
        if greedy is not None:
            assert res.is_greedy == greedy


def test_user_errors_name_the_problem():
    from beyondscale.errors import UserError

    model, tok = tiny_llama(), tiny_tokenizer()
    with pytest.raises(UserError, match="max_gen_toks"):
        Engine(model, tok, max_length=16).run([Item(0, "generate_until", context="The", max_gen_toks=16)])
    with pytest.raises(UserError, match="batch_size"):
        Engine(model, tok, batch_size=0)
    with pytest.raises(UserError, match="rolling_stride"):
        Engine(model, tok, max_length=16, rolling_stride=17)


def test_split_by_length_is_optimal_against_brute_force():
    """The DP that splits sorted lengths into padded sub-batches matches an exhaustive search."""
    import itertools
    import random

    from beyondscale.engine.scoring import split_by_length

    rng = random.Random(0)
    for _ in range(30):
        lengths = sorted(rng.randint(1, 60) for _ in range(rng.randint(1, 9)))
        overhead = rng.choice([0, 8, 48])

        def cost(sizes, lengths=lengths, overhead=overhead):
            total, start = 0, 0
            for n in sizes:
                total += n * lengths[start + n - 1] + overhead
                start += n
            return total

        best = min(
            cost([b - a for a, b in zip((0, *cuts), (*cuts, len(lengths)), strict=True)])
            for k in range(len(lengths))
            for cuts in itertools.combinations(range(1, len(lengths)), k)
        )
        sizes = split_by_length(lengths, overhead)
        assert sum(sizes) == len(lengths) and cost(sizes) == best
