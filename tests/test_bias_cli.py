"""`beyondscale bias ...` end to end in-process: JSON shape, the store row, one-line errors (exit 2)."""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile

import pytest

from beyondscale import cli
from test_bias_bbq import ROWS as BBQ_ROWS
from test_bias_bbq import write_jsonl
from test_bias_crows import write_csv


def call(monkeypatch, capsys, *args):
    """Run the CLI in-process (in a fresh working folder: the default store lands there)."""
    monkeypatch.chdir(tempfile.mkdtemp(prefix="bs-cli-"))
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_crows_json_and_store(monkeypatch, capsys, tiny_llama, tmp_path):
    data, store = write_csv(tmp_path / "c.csv"), tmp_path / "s.db"
    (tmp_path / "bad.txt").write_text("# known invalid\n2\n")
    code, out, _ = call(monkeypatch, capsys, "bias", "crows-pairs", "--model", str(tiny_llama), "--data", str(data),
                        "--invalid", str(tmp_path / "bad.txt"), "--json", "--store", str(store))
    assert code == 0
    doc = json.loads(out)
    assert doc["n"] == 5 and sum(v["n"] for v in doc["per_bias_type"].values()) == 5
    assert doc["flagged_invalid"] == ["2"] and doc["without_flagged"]["n"] == 4
    for _ in range(2):  # a re-run replaces its row: nothing duplicated
        call(monkeypatch, capsys, "bias", "crows-pairs", "--model", str(tiny_llama), "--data", str(data),
             "--json", "--store", str(store))
    rows = sqlite3.connect(store).execute("SELECT probe, COUNT(*) FROM probe_results GROUP BY probe").fetchall()
    assert rows == [("crows_pairs", 2)]  # with and without the invalid list: two data keys


def test_bbq_json_breakdowns(monkeypatch, capsys, tiny_llama, tmp_path):
    code, out, _ = call(monkeypatch, capsys, "bias", "bbq", "--model", str(tiny_llama), "--data",
                        str(write_jsonl(tmp_path / "b.jsonl", BBQ_ROWS)), "--json")
    assert code == 0
    doc = json.loads(out)
    assert {k: v["n"] for k, v in doc["per_category"].items()} == {"Age": 4, "SES": 1}
    assert {k: v["n"] for k, v in doc["per_context_condition"].items()} == {"ambig": 2, "disambig": 3}
    assert doc["per_category"]["SES"]["amb_bias_score"] is None  # NaN -> null: standard JSON


def _record_network_attempts(monkeypatch) -> list[str]:
    """Every name lookup or internet socket connection fails (as offline) and is recorded, so an attempt a
    library catches and falls back from still fails the test."""
    import socket

    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def lookup(host, *args, **kw):
        attempts.append(f"getaddrinfo {host}")
        raise socket.gaierror(socket.EAI_NONAME, "network blocked by the test")

    def guard(real):
        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                attempts.append(f"connect {address}")
                raise OSError("network blocked by the test")
            return real(sock, address)
        return connect

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(real_connect_ex))
    return attempts


def test_counterfactual_runs_offline(monkeypatch, capsys, tiny_llama):
    attempts = _record_network_attempts(monkeypatch)
    code, out, err = call(monkeypatch, capsys, "bias", "counterfactual", "--model", str(tiny_llama), "--json")
    assert attempts == [] and code == 0, err
    doc = json.loads(out)
    assert set(doc["per_axis"]) >= {"gender", "age", "religion"}
    assert doc["per_axis"]["gender"]["terms"]["woman"]["attribute_gap"]["n"] == 11


@pytest.mark.parametrize(("args", "message"), [
    (("crows-pairs", "--data", "{bad_csv}"), "row 2: field 'sent_less' is empty"),
    (("bbq", "--data", "{bad_jsonl}"), "row 2: not valid JSON"),
    (("bbq", "--data", "{missing}"), "no such file"),
])
def test_bad_files_one_line_exit_2(monkeypatch, capsys, tmp_path, args, message):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text(",sent_more,sent_less,stereo_antistereo,bias_type\n0,a.,b.,stereo,x\n1,a.,,stereo,x\n")
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text(json.dumps(BBQ_ROWS[0]) + "\n{oops\n")
    paths = {"bad_csv": bad_csv, "bad_jsonl": bad_jsonl, "missing": tmp_path / "nope.jsonl"}
    args = [a.format(**paths) for a in args]
    code, out, err = call(monkeypatch, capsys, "bias", args[0], "--model", str(tmp_path / "no-model"), *args[1:])
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
