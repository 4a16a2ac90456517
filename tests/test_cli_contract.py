"""The CLI contract, swept over every registered command: a usage error is one line on stderr that names the
flag, exit status 2, never a traceback.

Commands are enumerated from the typer app's click group, so a new command is covered without editing this
file. The bulk runs in-process through `beyondscale.cli.main` (the real entry point's code); a few run as
subprocesses to check the installed behaviour end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from importlib.metadata import version

import pytest

from _cli_runner import run_cli as run_main
from beyondscale import cli
from beyondscale.errors import UserError

UNKNOWN_OPTION = "--no-such-flag-xyz"


def _walk(group, path=()):
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield path + (name,), command, True
            yield from _walk(command, path + (name,))
        else:
            yield path + (name,), command, False


def _root():
    import typer.main

    return typer.main.get_command(cli.app)


ALL = list(_walk(_root()))
LEAVES = [(path, command) for path, command, is_group in ALL if not is_group]
GROUPS = [()] + [path for path, _, is_group in ALL if is_group]


def _annotation(param) -> typing.Any:
    descriptor = getattr(param, "type_descriptor", None)  # typer 0.29's own click
    if descriptor is not None:
        return descriptor.annotation
    return {"integer": int, "float": float}.get(getattr(getattr(param, "type", None), "name", ""), str)


def _is_numeric(param) -> bool:
    annotation = _annotation(param)
    kinds = {a for a in typing.get_args(annotation)} | {annotation}
    for kind in list(kinds):
        kinds |= set(typing.get_args(kind))
    return bool(kinds & {int, float}) and bool not in kinds


def _option_name(param) -> str:
    return next(o for o in param.opts if o.startswith("--"))


def _numeric_cases():
    for path, command in LEAVES:
        for param in command.params:
            if param.param_type_name == "option" and not param.is_flag and _is_numeric(param):
                yield pytest.param(path, _option_name(param), id=" ".join(path) + " " + _option_name(param))


def _required_cases():
    for path, command in LEAVES:
        required = [p for p in command.params if p.required]
        if required:
            yield pytest.param(path, required, id=" ".join(path))




def assert_one_line(code: int, err: str, *names: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_the_sweep_sees_every_command():
    """A guard on the enumeration itself: the commands the README documents are all in it."""
    names = {" ".join(path) for path, _ in LEAVES}
    expected = {"eval", "results list", "results show", "results export", "results logs", "analyze", "report",
                "fit", "bench", "quickstart", "tasks", "explain lens", "explain attribute", "explain routing",
                "explain transparency", "bias crows-pairs", "bias bbq", "bias counterfactual", "bias toxicity",
                "train", "sweep", "curate", "curate-scorer", "curate-rules"}
    assert expected <= names, expected - names
    assert len(list(_numeric_cases())) >= 20 and len(list(_required_cases())) >= 10


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p)) for p, _ in LEAVES])
def test_unknown_option(monkeypatch, capsys, path):
    code, out, err = run_main(monkeypatch, capsys, *path, UNKNOWN_OPTION)
    assert_one_line(code, err, UNKNOWN_OPTION)
    assert out == ""


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p) or "(root)") for p in GROUPS])
def test_unknown_command(monkeypatch, capsys, path):
    code, _, err = run_main(monkeypatch, capsys, *path, "no-such-command")
    assert_one_line(code, err, "no-such-command")


@pytest.mark.parametrize(("path", "required"), list(_required_cases()))
def test_missing_required(monkeypatch, capsys, path, required):
    code, _, err = run_main(monkeypatch, capsys, *path)
    line = assert_one_line(code, err, "Missing")
    hints = [_option_name(p) if p.param_type_name == "option" else p.name.upper() for p in required]
    assert any(hint.lower() in line.lower() for hint in hints), (hints, line)


@pytest.mark.parametrize(("path", "flag"), list(_numeric_cases()))
def test_malformed_number(monkeypatch, capsys, path, flag):
    code, _, err = run_main(monkeypatch, capsys, *path, flag, "abc")
    assert_one_line(code, err, flag)


@pytest.mark.parametrize("args", [("quickstart",), ("eval", "-m", "m", "-t", "t")])
def test_malformed_batch_size(monkeypatch, capsys, args, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, *args, "--batch-size", "x")
    assert_one_line(code, err, "--batch-size")
    assert not (tmp_path / "beyondscale.db").exists()  # refused before anything was opened


def test_bad_log_level_names_the_flag(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, "analyze", "--log-level", "loud")
    assert_one_line(code, err, "--log-level")


def test_version_in_process(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "--version")
    assert code == 0 and err == ""
    assert out.strip() == f"beyondscale {version('beyondscale')}"


def test_help_exits_zero(monkeypatch, capsys):
    code, out, _ = run_main(monkeypatch, capsys, "eval", "--help")
    assert code == 0 and "--tasks" in out


BIN = [sys.executable, "-m", "beyondscale.cli"]


@pytest.mark.parametrize(("args", "names", "code"), [
    (("eval", "--tasks", "arc_easy"), ("--models",), 2),
    (("eval", "--models", "m", "--tasks", "t", "--limit", "abc"), ("--limit",), 2),
    (("no-such-command",), ("no-such-command",), 2),
    (("quickstart", "--batch-size", "x"), ("--batch-size",), 2),
    (("bias", "bbq", "--bogus"), ("--bogus",), 2),
])
def test_entry_point_subprocess(args, names, code, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([*BIN, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert_one_line(proc.returncode, proc.stderr, *names)
    assert proc.stdout == ""


def test_version_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([*BIN, "--version"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"beyondscale {version('beyondscale')}", proc.stderr


# ---- one flag style across commands ---------------------------------------------------------------
def _opts(command) -> dict[str, object]:
    return {opt: param for param in command.params for opt in param.opts}


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p)) for p, _ in LEAVES])
def test_every_command_takes_json_and_log_level(path):
    opts = _opts(dict(LEAVES)[path])
    assert "--json" in opts and "--log-level" in opts, sorted(opts)


@pytest.mark.parametrize("path", [pytest.param(p, id=" ".join(p)) for p, _ in LEAVES])
def test_short_flags_mean_the_same_everywhere_and_booleans_have_a_no_form(path):
    command = dict(LEAVES)[path]
    opts = _opts(command)
    if "-t" in opts:
        assert "--tasks" in opts and opts["-t"] is opts["--tasks"]
    if "-m" in opts:
        assert opts["-m"] is opts.get("--models", opts.get("--model"))
    assert "--task" not in opts and "--metric" not in opts  # old spellings are hidden aliases only
    for param in command.params:
        if param.param_type_name == "option" and param.is_flag and "--version" not in param.opts:
            assert param.secondary_opts, (param.opts, "a boolean flag needs its --no- form")


def _capture(monkeypatch, name):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs, args=args)
        raise SystemExit(0)

    monkeypatch.setattr(cli.api, name, fake)
    return seen


def test_old_spellings_parse_as_hidden_aliases(monkeypatch, capsys):
    seen = _capture(monkeypatch, "analyze")
    code, _, err = run_main(monkeypatch, capsys, "analyze", "--model", "a,b", "--task", "t1", "--metric", "acc",
                            "--task=t2")
    assert code == 0, err
    assert seen["models"] == ["a", "b"] and seen["tasks"] == ["t1", "t2"] and seen["metrics"] == ["acc"]
    code, out, _ = run_main(monkeypatch, capsys, "analyze", "--help")
    assert "--tasks" in out and "--task " not in out and "--metric " not in out


def test_report_takes_the_constraints_of_analyze(monkeypatch, capsys):
    seen = _capture(monkeypatch, "report")
    code, _, err = run_main(monkeypatch, capsys, "report", "--out", "r.md", "-m", "a", "-m", "b", "-t", "t",
                            "--min-score", "0.5", "--max-latency-ms", "200", "--max-memory-gb", "4",
                            "--max-joules-per-token", "0.1", "--max-usd-per-1m-tokens", "3", "--metrics", "acc",
                            "--min-gain-per-doubling", "0.01", "--primary", "t", "--seed", "7", "--family", "f")
    assert code == 0, err
    assert seen["args"] == ("r.md",) and seen["models"] == ["a", "b"] and seen["tasks"] == ["t"]
    assert seen["constraints"] == {"min_score": 0.5, "max_latency_ms": 200.0, "max_memory_gb": 4.0,
                                   "max_joules_per_token": 0.1, "max_usd_per_1m_tokens": 3.0}
    assert (seen["metrics"], seen["min_gain_per_doubling"], seen["primary"], seen["seed"], seen["family"]) == (
        ["acc"], 0.01, "t", 7, "f")


def test_eval_builds_its_settings_from_every_flag(monkeypatch, capsys, tmp_path):
    """The settings object carries each flag's value (compared with an EvalSettings written out by hand)."""
    seen = _capture(monkeypatch, "evaluate")
    folder = tmp_path / "a,b"  # a path with a comma stays one model
    folder.mkdir()
    code, _, err = run_main(monkeypatch, capsys, "eval", "--model", f"X={folder}", "-m", "h1,h2", "-t", "t1,t2",
                            "--limit", "3", "--seed", "9", "--batch-size", "4", "--device", "cpu", "--dtype",
                            "float32", "--num-fewshot", "2", "--max-length", "64", "--family", "fam",
                            "--trust-remote-code", "--quantize", "int8", "--cpu-watts", "15", "--region", "FR",
                            "--grid-gco2-per-kwh", "50", "--pue", "1.2", "--usd-per-hour", "0.5")
    assert code == 0, err
    assert seen["args"] == ([f"X={folder}", "h1", "h2"], ["t1", "t2"])
    assert seen["settings"] == cli.api.EvalSettings(
        limit=3, seed=9, batch_size=4, device="cpu", dtype="float32", num_fewshot=2, max_length=64, family="fam",
        trust_remote_code=True, quantize="int8", cpu_watts=15.0, region="FR", grid_gco2_per_kwh=50.0, pue=1.2,
        usd_per_hour=0.5)
    assert seen["executor"] is None  # local


def test_train_request_nests_shape_and_optimiser_from_the_flags(monkeypatch, capsys):
    from beyondscale.lab.configs import Shape
    from beyondscale.lab.run import TrainRequest
    from beyondscale.lab.train import TrainConfig

    seen = {}

    def fake_train(request):
        seen["request"] = request
        raise SystemExit(0)

    monkeypatch.setattr(cli.api, "train", fake_train)
    code, _, err = run_main(monkeypatch, capsys, "train", "--data", "d.txt", "--out", "o", "--d-model", "64",
                            "--n-layer", "3", "--n-kv-head", "2", "--lr", "0.01", "--seed", "5", "--no-compile",
                            "--batch-size", "8", "--tokens", "4096", "--json")
    assert code == 0, err
    assert seen["request"] == TrainRequest(
        data="d.txt", out="o", tokens=4096, shape=Shape(d_model=64, n_layer=3, n_kv_head=2),
        train=TrainConfig(lr=0.01, seed=5, compile=False, batch_size=8), store="beyondscale.db",
        show_progress=False)


def test_setup_logging_quiets_third_parties_below_debug(monkeypatch):
    import logging

    from beyondscale import _quiet_deps

    logging.getLogger("huggingface_hub").setLevel(logging.NOTSET)
    _quiet_deps.setup_logging("debug")
    assert logging.getLogger("huggingface_hub").level == logging.NOTSET
    _quiet_deps.setup_logging("info")
    assert logging.getLogger("huggingface_hub").level == logging.ERROR
    with pytest.raises(UserError, match="--log-level loud"):
        _quiet_deps.setup_logging("loud")


def test_interrupt_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.api, "list_runs", interrupted)
    code, _, err = run_main(monkeypatch, capsys, "results", "list", "--store", str(tmp_path / "s.db"))
    assert code == 130 and err.strip().startswith("interrupted:") and len(err.strip().splitlines()) == 1


def test_quickstart_and_bench_pass_their_flags_through(monkeypatch, capsys):
    seen = _capture(monkeypatch, "quickstart")
    code, _, err = run_main(monkeypatch, capsys, "quickstart", "--device", "cpu", "--batch-size", "4",
                            "--quantize", "int8", "--fresh", "--budget-minutes", "12", "--store", "q.db")
    assert code == 0, err
    assert seen["settings"] == cli.api.EvalSettings(device="cpu", batch_size=4, quantize="int8")
    assert (seen["fresh"], seen["budget_minutes"], seen["store"]) == (True, 12.0, "q.db")
    seen = _capture(monkeypatch, "bench")
    assert run_main(monkeypatch, capsys, "bench", "-m", "x")[0] == 0
    assert seen["prompt_tokens"] == [128, 512] and seen["args"] == (["x"],)  # the default, parsed
    assert run_main(monkeypatch, capsys, "bench", "-m", "x", "--prompt-tokens", "64,32", "--dtype", "float32")[0] == 0
    assert seen["prompt_tokens"] == [64, 32] and seen["settings"] == cli.api.EvalSettings(dtype="float32")


def test_sweep_builds_one_settings_object(monkeypatch, capsys):
    from beyondscale.executors.choice import ExecutorSettings
    from beyondscale.lab import commands

    seen = {}

    def fake_sweep(settings):
        seen["settings"] = settings
        raise SystemExit(0)

    monkeypatch.setattr(cli.api, "sweep", fake_sweep)
    code, _, err = run_main(monkeypatch, capsys, "sweep", "--data", "c.txt", "--out", "o", "--task", "a,b",
                            "--tokens", "4096", "--tokens", "8192", "--max-retries", "3", "--json")
    assert code == 0, err
    assert seen["settings"] == commands.SweepSettings(
        data="c.txt", out="o", tokens=[4096, 8192], tasks=["a", "b"], executor=ExecutorSettings(max_retries=3),
        show_progress=False)
