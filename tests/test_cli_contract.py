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

from beyondscale import cli

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


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`beyondscale ARGS` in this process: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    capsys.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
