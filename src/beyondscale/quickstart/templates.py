"""The three quickstart task definitions, as ordinary lm-evaluation-harness YAML fields.

`build.py` fills in `dataset_kwargs.data_files.test` (a file name relative to the YAML's folder)
and `metadata`, then writes each dict as `<task>.yaml`. Only lm-eval field names are used: lm-eval
builds and scores them (data files are read beside the YAML, see tasks.harness).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TASK_TEMPLATES", "TASK_NAMES", "LM_EVAL_FIELDS"]

# Top-level keys of an lm-eval task config that these templates may use.
LM_EVAL_FIELDS: frozenset[str] = frozenset(
    {
        "task", "tag", "dataset_path", "dataset_name", "dataset_kwargs", "test_split",
        "validation_split", "training_split", "fewshot_split", "doc_to_text", "doc_to_target",
        "doc_to_choice", "target_delimiter", "fewshot_delimiter", "output_type", "metric_list",
        "generation_kwargs", "num_fewshot", "repeats", "filter_list", "should_decontaminate",
        "metadata", "description",
    }
)

TASK_TEMPLATES: dict[str, dict[str, Any]] = {
    "qs_bpb": {
        "task": "qs_bpb",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": None}},
        "test_split": "test",
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": "{{text}}",
        "metric_list": [
            {"metric": "word_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
            {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
            {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
        ],
    },
    "qs_nextsent": {
        "task": "qs_nextsent",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": None}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{passage}}",
        "doc_to_target": "{{label}}",
        "doc_to_choice": "choices",
        "target_delimiter": " ",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            # beyondscale adds the expected calibration error (ece) from the probabilities lm-eval logs here
            {"metric": "brier_score", "aggregation": "brier_score", "higher_is_better": False},
        ],
    },
    "qs_pattern": {
        "task": "qs_pattern",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": None}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "Continue the sequence: {{sequence}}",
        # The answer keeps its leading space (" 7"): it is exactly what a model writes after ",".
        "doc_to_target": "{{answer}}",
        "target_delimiter": "",
        "generation_kwargs": {"until": [",", "\n"], "max_gen_toks": 8, "do_sample": False, "temperature": 0.0},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    },
}

TASK_NAMES: tuple[str, ...] = tuple(TASK_TEMPLATES)
