"""The lens and CrowS-Pairs on the two real packaged models (slow: loads SmolLM2-135M and Gemma-3-270M)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

TEXT = "The capital of France is Paris, and the capital of Italy is Rome."


@pytest.fixture(scope="module", params=["SmolLM2-135M-Instruct", "Gemma-3-270M"])
def real(request):
    from beyondscale.errors import UserError
    from beyondscale.interpret.loading import load_probe_model
    from beyondscale.quickstart.packaged import PACKAGED_MODELS

    try:
        path = PACKAGED_MODELS[request.param].path()
    except UserError as err:
        pytest.skip(str(err))
    return load_probe_model(str(path), device="cpu")


def test_lens_on_real_model(real):
    """The structural parts reproduce the model's logits (else the lens refuses) and the curve ends at 0."""
    from beyondscale.interpret import lens

    res = lens.lens_texts(real.model, real.tokenizer, [TEXT], real.max_length, real.name)
    assert res.n_layers == real.model.config.num_hidden_layers
    assert res.kl_to_final[-1] == pytest.approx(0.0, abs=1e-4) and res.top1_agrees[-1] == 1.0
    assert res.kl_to_final[0] > res.kl_to_final[-2] > 0  # the embedding reads worst, the penultimate layer best-ish
    assert 0 < res.prediction_depth <= res.n_layers
    vocab = real.model.get_output_embeddings().weight.shape[0]
    assert res.max_logits_floats < (res.n_layers + 1) * res.n_positions * vocab


def test_crows_pair_equals_naive(real):
    """One crafted pair through the engine equals log p(sentence | BOS-or-EOS) computed by hand."""
    import torch

    from beyondscale.bias import crows

    tok, model = real.tokenizer, real.model
    pairs = [crows.CrowsPair("0", "The woman was a doctor.", "The man was a doctor.", "stereo", "gender")]
    _, lls = crows.score_crows(model, tok, pairs)
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    for sentence, got in zip((pairs[0].sent_more, pairs[0].sent_less), lls[0], strict=True):
        ids = [prefix, *tok.encode(sentence, add_special_tokens=False)]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        assert got == pytest.approx(float(sum(logp[i - 1, ids[i]] for i in range(1, len(ids)))), abs=1e-3)
