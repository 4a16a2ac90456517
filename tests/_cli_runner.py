"""`beyondscale ARGS` in this process, for tests: (exit status, stdout, stderr)."""

from __future__ import annotations

import sys

from beyondscale import cli


def run_cli(monkeypatch, capture, *args: str) -> tuple[int, str, str]:
    """`capture` is pytest's capsys or capfd."""
    monkeypatch.setattr(sys, "argv", ["beyondscale", *args])
    capture.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    captured = capture.readouterr()
    return code, captured.out, captured.err
