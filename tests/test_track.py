"""Trackers round-trip through their own readers: what was logged is what the store and the record hold.

Each library runs in its local/offline mode (MLflow on SQLite, W&B offline, TensorBoard event files,
trackio's local store in a subprocess with its own TRACKIO_DIR) and is read back with its own reader
(MlflowClient, wandb's protobuf records, EventAccumulator, trackio.Api). The reference values come from
the store (`load_store_frames`) and the training record, not from the tracker code.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beyondscale import api
from beyondscale.errors import UserError
from beyondscale.track import log_evaluation, log_report, log_training, open_trackers, parse_tracker_args

ROOT = Path(__file__).resolve().parents[1]


def _needs(module: str):
    return pytest.importorskip(module, reason=f"{module} not installed: pip install 'beyondscale[track]'")


@pytest.fixture(scope="module")
def study(tiny_llama, tiny_gpt2, tmp_path_factory):
    """A real evaluation of two models, a real (tiny) training record and a report file."""
    from _lab_helpers import tiny_request, write_corpus
    from beyondscale.lab.run import train_model
    from conftest import write_mc_task

    folder = tmp_path_factory.mktemp("track")
    task = write_mc_task(folder / "tasks", n=8)
    store = folder / "s.db"
    result = api.evaluate([f"Llama={tiny_llama}", f"GPT2={tiny_gpt2}"], [str(task)], store=store, show_progress=False)
    record = train_model(tiny_request(write_corpus(folder / "c.txt", 400), folder / "ladder" / "rung-a", tokens=1024))
    report = folder / "report.html"
    report.write_text("<html>report</html>", encoding="utf-8")
    frames = api.load_store_frames(store)
    return {"result": result, "record": record, "report": report, "store": store, "frames": frames}


def _score(study, model: str, metric: str) -> tuple[float, float]:
    s = study["frames"].scores
    row = s[(s["model"] == model) & (s["task"] == "tiny_mc") & (s["metric"] == metric)].iloc[0]
    return float(row["value"]), float(row["stderr"])


def _model_row(study, model: str):
    m = study["frames"].models
    return m[m["model"] == model].iloc[0]


def _log_all(trackers, study) -> None:
    group = study["result"].run_id
    log_evaluation(trackers, study["result"])
    log_training(trackers, study["record"], group=group)
    log_report(trackers, study["report"], study["store"], group=group)


def _train_curve(study) -> list[tuple[int, float]]:
    return [(p["step"], p["loss"]) for p in study["record"]["loss_curve"]]


def _same_curve(got: list[tuple[int, float]], study, rel: float = 1e-9) -> None:
    want = _train_curve(study)
    assert len(want) >= 3 and [s for s, _ in got] == [s for s, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=rel)


# ---- MLflow ----------------------------------------------------------------------------------------
def test_mlflow_round_trip(study, tmp_path, capfd) -> None:
    _needs("mlflow")
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    capfd.readouterr()
    trackers = open_trackers(["mlflow"], f"tracking_uri={uri},experiment_name=bs,artifact_location={tmp_path}/art")
    _log_all(trackers, study)
    assert capfd.readouterr().out == ""
    client = MlflowClient(uri)
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("bs").experiment_id])}
    group = study["result"].run_id
    assert set(runs) == {group, "Llama", "GPT2", "rung-a", "report"}
    parent = runs[group].info.run_id
    for model in ("Llama", "GPT2"):
        run = runs[model]
        value, stderr = _score(study, model, "acc")
        assert run.data.metrics["tiny_mc/acc"] == pytest.approx(value)
        assert run.data.metrics["tiny_mc/acc_stderr"] == pytest.approx(stderr)
        assert run.data.tags["mlflow.parentRunId"] == parent and run.info.status == "FINISHED"
        facts = _model_row(study, model)
        assert run.data.params["model_key"] == facts["model_key"]
        assert run.data.params["params_total"] == str(facts["params_total"])
        assert "tiny_mc/energy_j_estimated" in run.data.metrics  # no energy counter here: labelled an estimate
        assert not any(k.endswith("energy_j_measured") for k in run.data.metrics)
        assert run.data.params["tiny_mc/energy_source"].startswith("estimate")
    history = client.get_metric_history(runs["rung-a"].info.run_id, "train/loss")
    _same_curve(sorted((h.step, h.value) for h in history), study)
    assert runs["rung-a"].data.tags["mlflow.parentRunId"] == parent
    names = [a.path for a in client.list_artifacts(runs["rung-a"].info.run_id)]
    assert "beyondscale_lab.json" in names
    assert [a.path for a in client.list_artifacts(runs["report"].info.run_id)] == ["report.html"]
    assert runs["report"].data.params["store"] == str(study["store"].resolve())


# ---- W&B ------------------------------------------------------------------------------------------
def _wandb_records(path: Path) -> list:
    """The records of an offline .wandb file: W&B's LevelDB-style log (7-byte file header, 32 KiB blocks,
    7-byte chunk headers: crc32, length, type full/first/middle/last) holding its own protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B offline run file"
    block, pos, records, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room for a header: the block's tail is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _item_key(item) -> str:
    return item.key or "/".join(item.nested_key)  # wandb-core writes `nested_key`; older writers `key`


def _wandb_run(folder: Path) -> dict:
    (path,) = folder.glob("run-*.wandb")
    run, config, history = None, {}, []
    for rec in _wandb_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run = rec.run
            config.update({_item_key(i): json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            config.update({_item_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            history.append({_item_key(i): json.loads(i.value_json) for i in rec.history.item})
    return {"name": run.display_name, "group": run.run_group, "job_type": run.job_type, "config": config,
            "history": history, "artifacts": [r.artifact.name for r in _wandb_records(path)
                                              if r.WhichOneof("record_type") == "artifact"]}


def test_wandb_offline_round_trip(study, tmp_path, capfd) -> None:
    _needs("wandb")
    capfd.readouterr()
    trackers = open_trackers(["wandb"], f"project=bs,mode=offline,dir={tmp_path}")
    _log_all(trackers, study)
    assert capfd.readouterr().out == ""  # stdout stays for `--json` documents
    runs = {r["name"]: r for r in map(_wandb_run, sorted((tmp_path / "wandb").glob("offline-run-*")))}
    assert set(runs) == {"Llama", "GPT2", "rung-a", "report"}
    for model in ("Llama", "GPT2"):
        run = runs[model]
        assert run["group"] == study["result"].run_id and run["job_type"] == "eval"
        assert run["config"]["model_key"] == _model_row(study, model)["model_key"]
        logged = {k: v for h in run["history"] for k, v in h.items()}
        value, stderr = _score(study, model, "acc")
        assert logged["tiny_mc/acc"] == pytest.approx(value) and logged["tiny_mc/acc_stderr"] == pytest.approx(stderr)
    train = runs["rung-a"]
    assert train["job_type"] == "train"
    curve = [(h["_step"], h["train/loss"]) for h in train["history"] if "train/loss" in h]
    _same_curve(curve, study)
    assert runs["report"]["artifacts"] == ["report.html"]


# ---- TensorBoard ----------------------------------------------------------------------------------
def test_tensorboard_round_trip(study, tmp_path) -> None:
    _needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    trackers = open_trackers(["tensorboard"], f"log_dir={tmp_path}/tb")
    _log_all(trackers, study)
    group = tmp_path / "tb" / study["result"].run_id
    assert sorted(p.name for p in group.iterdir()) == ["GPT2", "Llama", "report", "rung-a"]
    for model in ("Llama", "GPT2"):
        ea = EventAccumulator(str(group / model))
        ea.Reload()
        value, stderr = _score(study, model, "acc")
        assert ea.Scalars("tiny_mc/acc")[0].value == pytest.approx(value, rel=1e-6)  # event files hold float32
        assert ea.Scalars("tiny_mc/acc_stderr")[0].value == pytest.approx(stderr, rel=1e-6)
        info = plugin_data_pb2.HParamsPluginData.FromString(
            ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
        assert info.hparams["model_key"].string_value == _model_row(study, model)["model_key"]
    ea = EventAccumulator(str(group / "rung-a"))
    ea.Reload()
    _same_curve([(e.step, e.value) for e in ea.Scalars("train/loss")], study, rel=1e-6)
    report = EventAccumulator(str(group / "report"))
    report.Reload()
    assert json.loads(report.Tensors("artifacts/text_summary")[0].tensor_proto.string_val[0]) == str(
        study["report"].resolve())


def test_tensorboard_training_group_defaults_to_the_ladder_folder(study, tmp_path) -> None:
    _needs("tensorboard")
    log_training(open_trackers(["tensorboard"], f"log_dir={tmp_path}"), study["record"])
    assert (tmp_path / "ladder" / "rung-a").is_dir()


# ---- trackio --------------------------------------------------------------------------------------
TRACKIO_SCRIPT = """
import json, pickle, sys
from beyondscale.track import log_evaluation, log_report, log_training, open_trackers
study = pickle.load(open(sys.argv[1], "rb"))
trackers = open_trackers(["trackio"], "project=bs")
log_evaluation(trackers, study["result"])
log_training(trackers, study["record"], group=study["result"].run_id)
log_report(trackers, study["report"], study["store"], group=study["result"].run_id)
import trackio
from trackio.sqlite_storage import SQLiteStorage
out = {}
for run in trackio.Api().runs("bs"):
    out[run.name] = {"config": run.config, "logs": SQLiteStorage.get_logs("bs", run.name),
                     "artifacts": SQLiteStorage.get_run_artifacts("bs", run.name, None)}
print("RESULT" + json.dumps(out, default=str))
"""


def test_trackio_local_round_trip(study, tmp_path) -> None:
    _needs("trackio")
    import os

    blob = tmp_path / "study.pkl"  # written by this test, read by its own subprocess
    blob.write_bytes(pickle.dumps({k: study[k] for k in ("result", "record", "report", "store")}))
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", TRACKIO_SCRIPT, str(blob)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Trackio" not in done.stdout.split("RESULT")[0]  # its banners went to stderr, stdout stays clean
    runs = json.loads(done.stdout.split("RESULT", 1)[1])
    assert set(runs) == {"Llama", "GPT2", "rung-a", "report"}
    for model in ("Llama", "GPT2"):
        run = runs[model]
        assert run["config"]["_Group"] == study["result"].run_id
        assert run["config"]["model_key"] == _model_row(study, model)["model_key"]
        logged = {k: v for row in run["logs"] for k, v in row.items()}
        assert logged["tiny_mc/acc"] == pytest.approx(_score(study, model, "acc")[0])
    curve = [(r["step"], r["train/loss"]) for r in runs["rung-a"]["logs"] if "train/loss" in r]
    _same_curve(curve, study)
    assert "report.html" in json.dumps(runs["report"]["artifacts"])


# ---- bad input, before any work -------------------------------------------------------------------
def test_unknown_key_names_it_and_the_accepted_ones() -> None:
    with pytest.raises(UserError) as err:
        parse_tracker_args("tracking_uri=sqlite:///x.db,colour=red", ["mlflow"])
    line = str(err.value)
    assert "colour" in line and "tracking_uri" in line and "experiment_name" in line and "\n" not in line
    with pytest.raises(UserError, match="tracker wandb is not selected"):
        parse_tracker_args("wandb.project=x", ["mlflow"])
    with pytest.raises(UserError, match="expected key=value"):
        parse_tracker_args("project", ["wandb"])
    with pytest.raises(UserError, match="unknown tracker"):
        open_trackers(["neptune"])


def test_shared_and_scoped_keys() -> None:
    parsed = parse_tracker_args("project=p,wandb.mode=offline,trackio.group=g", ["wandb", "trackio"])
    assert parsed == {"wandb": {"project": "p", "mode": "offline"}, "trackio": {"project": "p", "group": "g"}}


def test_missing_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(UserError) as err:
        open_trackers(["tensorboard", "wandb"], "mode=offline")
    assert "wandb" in str(err.value) and "pip install 'beyondscale[track]'" in str(err.value)


def test_unreachable_tracking_server_fails_fast(tmp_path) -> None:
    _needs("mlflow")
    start = time.perf_counter()
    with pytest.raises(UserError, match=r"tracking_uri=http://127\.0\.0\.1:9: cannot reach 127\.0\.0\.1:9"):
        open_trackers(["mlflow"], "tracking_uri=http://127.0.0.1:9")
    assert time.perf_counter() - start < 10
    with pytest.raises(UserError, match="does not exist"):
        open_trackers(["mlflow"], f"tracking_uri=sqlite:///{tmp_path}/no/such/folder/m.db")
    with pytest.raises(UserError, match="mode=sometimes"):
        open_trackers(["wandb"], "mode=sometimes")


def test_stored_result_logs_what_the_evaluation_logged(study, tmp_path) -> None:
    """sweep/quickstart evaluate inside: the store's view logs the same metrics and params as the EvalResult."""
    from beyondscale.track.log import evaluation_runs, stored_result

    direct = {r["name"]: r for r in evaluation_runs(study["result"])}
    stored = {r["name"]: r for r in evaluation_runs(stored_result(study["store"], study["result"].run_id))}
    assert set(stored) == set(direct) == {"Llama", "GPT2"}
    for model, run in direct.items():
        other = stored[model]
        assert other["params"]["model_key"] == run["params"]["model_key"]
        for key in ("tiny_mc/acc", "tiny_mc/acc_stderr", "tiny_mc/acc_norm", "tiny_mc/energy_j_estimated"):
            assert other["metrics"][key] == pytest.approx(run["metrics"][key])
