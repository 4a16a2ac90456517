"""Tasks: lm-evaluation-harness task files, loaded safely and rendered into `Item`s.

`load_task("arc_easy")` or `load_task("path/to/task.yaml")` gives a checked `TaskSpec`;
`build_items(spec, limit, seed)` renders its documents with lm-eval's exact prompt rules;
`build_task(...)` also returns the `BuildInfo` (seed, doc ids, few-shot doc ids) to record.
"""

from beyondscale.tasks.build import BuildInfo, BuiltTask, build_items, build_task
from beyondscale.tasks.spec import TaskSpec, list_builtin_tasks, load_task, spec_from_dict

__all__ = [
    "BuildInfo",
    "BuiltTask",
    "TaskSpec",
    "build_items",
    "build_task",
    "list_builtin_tasks",
    "load_task",
    "spec_from_dict",
]
