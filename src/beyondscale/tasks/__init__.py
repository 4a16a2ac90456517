"""Tasks: lm-evaluation-harness is the task library.

`harness.load_tasks("mmlu,my_task.yaml", include_path=...)` builds lm-eval's tasks (names, groups, tags,
folders, files) behind beyondscale's guards; `lm_eval_items.plan_items` records the requests lm-eval asks
and turns each document's into one engine `Item`; `lm_eval_items.score_planned` hands the engine's answers
back to lm-eval, which filters, scores and aggregates them; `harness_identity` keys tasks and documents by
content.
"""
