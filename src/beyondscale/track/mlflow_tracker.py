"""MLflow: one child run per model under a parent run per group (the study), through `MlflowClient`.

The client API (not `mlflow.start_run`) keeps no process-wide active run, so an MLflow tracker never
disturbs a user's own MLflow runs. Default store: $MLFLOW_TRACKING_URI, else `sqlite:///mlflow.db`
(MLflow 3 keeps its file store in maintenance mode); `mlflow ui --backend-store-uri sqlite:///mlflow.db` opens it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beyondscale.errors import UserError
from beyondscale.track.base import first_line, flatten, missing_library
from beyondscale.track.probe import check_reachable

DEFAULT_URI = "sqlite:///mlflow.db"
GROUP_TAG, ROLE_TAG = "beyondscale.group", "beyondscale.role"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
_BAD = re.compile(r"[^/\w.\- :]")


def _key(name: str) -> str:
    """MLflow names allow letters, digits, _ - . space : and /; anything else becomes _."""
    return _BAD.sub("_", name).strip("/") or "_"


def check_uri(uri: str) -> None:
    check_reachable("--tracker-args tracking_uri", uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        folder = Path(uri[len("sqlite:///"):]).expanduser().parent
        if not folder.is_dir():
            raise UserError(f"--tracker-args tracking_uri={uri}: folder {folder} does not exist")


class MlflowTracker:
    name = "mlflow"

    def __init__(self, args: Mapping[str, str]) -> None:
        uri = args.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
        check_uri(uri)
        try:
            from mlflow import MlflowClient
        except ImportError as err:
            raise missing_library("mlflow", "mlflow", err) from None
        experiment = args.get("experiment_name") or "beyondscale"
        try:
            self.client = MlflowClient(tracking_uri=uri)
            self.experiment_id = self._experiment(experiment, args.get("artifact_location"))
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; the user needs one line
            raise UserError(f"--tracker mlflow: tracking_uri {uri}: {first_line(err)}") from None
        self.location = f"{uri} (experiment {experiment})"
        self.run_id: str | None = None
        self._parents: dict[str, str] = {}

    def _experiment(self, name: str, artifact_location: str | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        if found.lifecycle_stage == "deleted":
            raise UserError(f"--tracker-args experiment_name={name}: this MLflow experiment is deleted; "
                            "restore it or choose another name")
        return found.experiment_id

    def _parent(self, group: str) -> str:
        """The group's parent run (found by tag, so later commands of one study join it), made once."""
        if group not in self._parents:
            quoted = group.replace("'", "\\'")
            found = self.client.search_runs(
                [self.experiment_id], f"tags.`{GROUP_TAG}` = '{quoted}' and tags.`{ROLE_TAG}` = 'group'",
                max_results=1)
            if found:
                self._parents[group] = found[0].info.run_id
            else:
                run = self.client.create_run(self.experiment_id, run_name=group,
                                             tags={GROUP_TAG: group, ROLE_TAG: "group"})
                self.client.set_terminated(run.info.run_id)
                self._parents[group] = run.info.run_id
        return self._parents[group]

    def start_run(self, name: str, group: str | None, params: Mapping[str, Any], kind: str = "eval") -> None:
        self.end()
        tags = {ROLE_TAG: kind}
        if group:
            tags.update({GROUP_TAG: group, "mlflow.parentRunId": self._parent(group)})
        self.run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        self._log_params(params)

    def _log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), str(v)[:MAX_PARAM_CHARS]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self._open(), params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_key(k), float(v), now, int(step or 0)) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self._open(), metrics=items[i:i + 1000])

    def log_artifact(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self._open(), str(path), artifact_path=path.name)
        else:
            self.client.log_artifact(self._open(), str(path))

    def end(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FINISHED")
            self.run_id = None

    def _open(self) -> str:
        if self.run_id is None:
            raise RuntimeError("mlflow tracker: no open run (call start_run first)")
        return self.run_id
