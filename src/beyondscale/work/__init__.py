"""The unit of work: plan what the store lacks, run units anywhere (pure), write with one writer.

    units = plan(store, models, tasks)          # grouped by model; only items still to do
    for output in executor.run(units):          # run_unit(unit): picklable in, picklable out
        writer.write(output)                    # one transaction per batch, idempotent
"""

from beyondscale.work.guard import guarded
from beyondscale.work.plan import plan, todo, with_lab_record
from beyondscale.work.schedule import Summary, claim, run_all
from beyondscale.work.unit import (
    BatchResult,
    FactsResult,
    LoadSettings,
    ModelJob,
    TaskJob,
    Unit,
    UnitFailed,
    UnitLog,
    UnitOutput,
    content_hash,
    run_unit,
)
from beyondscale.work.writer import ModelLabel, Writer

__all__ = [
    "BatchResult",
    "FactsResult",
    "LoadSettings",
    "ModelJob",
    "ModelLabel",
    "TaskJob",
    "Unit",
    "UnitFailed",
    "UnitLog",
    "UnitOutput",
    "Summary",
    "Writer",
    "claim",
    "content_hash",
    "guarded",
    "plan",
    "run_all",
    "run_unit",
    "todo",
    "with_lab_record",
]
