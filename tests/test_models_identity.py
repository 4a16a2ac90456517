"""Model identity covers every file that changes scores, hashes weights in full, and hashes each file once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from beyondscale.errors import UserError
from beyondscale.models import hashing
from beyondscale.models.ref import parse_model_ref

MB = 1 << 20


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BEYONDSCALE_CACHE", str(tmp_path / "cache"))
    hashing.forget()  # the in-process memo must not leak between tests
    yield
    hashing.forget()


def _folder(root: Path, weight_bytes: bytes) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 10}))
    (root / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (root / "generation_config.json").write_text('{"eos_token_id": 1}')
    (root / "model.safetensors").write_bytes(weight_bytes)
    return root


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("offset", [6 * MB + 12345, -MB // 2])
def test_weight_byte_far_from_start_changes_identity(tmp_path, offset) -> None:
    blob = os.urandom(8 * MB)
    a, b = _folder(tmp_path / "a", blob), _folder(tmp_path / "b", blob)
    assert parse_model_ref(str(a)).identity() == parse_model_ref(str(b)).identity()  # content, not place
    _flip(b / "model.safetensors", offset)
    assert parse_model_ref(str(a)).identity() != parse_model_ref(str(b)).identity()


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "generation_config.json"])
def test_config_tokenizer_and_generation_config_change_identity(tmp_path, name) -> None:
    a, b = _folder(tmp_path / "a", b"w" * 1000), _folder(tmp_path / "b", b"w" * 1000)
    (b / name).write_text((b / name).read_text().replace("}", ', "x": 1}', 1))
    assert parse_model_ref(str(a)).identity() != parse_model_ref(str(b)).identity()


def test_gguf_identity_is_its_full_content(tmp_path) -> None:
    blob = b"GGUF" + os.urandom(4 * MB)
    (tmp_path / "a.gguf").write_bytes(blob)
    (tmp_path / "b.gguf").write_bytes(blob)
    a, b = parse_model_ref(str(tmp_path / "a.gguf")), parse_model_ref(str(tmp_path / "b.gguf"))
    assert a.identity() == b.identity()
    _flip(tmp_path / "b.gguf", 3 * MB)
    assert a.identity() != parse_model_ref(str(tmp_path / "b.gguf")).identity()


def test_unchanged_file_is_read_once_across_processes(tmp_path, monkeypatch) -> None:
    folder = _folder(tmp_path / "m", os.urandom(2 * MB))
    os.utime(folder / "model.safetensors", ns=(1_000_000_000, 1_000_000_000))  # not "just written"
    reads: list[str] = []
    real = hashing._hash_file

    def counting(path: Path, size: int) -> str:
        reads.append(path.name)
        return real(path, size)

    monkeypatch.setattr(hashing, "_hash_file", counting)
    first = parse_model_ref(str(folder)).identity()
    assert reads.count("model.safetensors") == 1
    hashing.forget()  # a new process: only the on-disk cache remains
    assert parse_model_ref(str(folder)).identity() == first
    assert reads.count("model.safetensors") == 1
    os.utime(folder / "model.safetensors", ns=(2_000_000_000, 2_000_000_000))  # touched: hashed again
    assert parse_model_ref(str(folder)).identity() == first
    assert reads.count("model.safetensors") == 2


def test_digest_matches_sha256_of_whole_file(tmp_path) -> None:
    import hashlib

    path = tmp_path / "w.bin"
    path.write_bytes(os.urandom(3 * MB + 17))
    assert hashing.file_digest(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_hub_identity_uses_the_resolved_commit(tmp_path, monkeypatch) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--org--m" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    refs = tmp_path / "hub" / "models--org--m" / "refs"
    refs.mkdir()
    (refs / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_branch = parse_model_ref("org/m").identity()
    by_commit = parse_model_ref(f"org/m@{commit}").identity()
    assert by_branch == by_commit  # "main" resolved to the commit it points at
    with pytest.raises(UserError, match="org/other"):
        parse_model_ref("org/other").identity()  # offline and not cached: one clear line


def test_sampled_only_beyond_the_limit(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.gguf"
    path.write_bytes(os.urandom(4 * MB))
    monkeypatch.setattr(hashing, "FULL_HASH_LIMIT", 2 * MB)
    assert hashing.file_digest(path).startswith("sha256-sampled:")
    shutil.copy(path, tmp_path / "copy.gguf")
    assert hashing.file_digest(tmp_path / "copy.gguf") == hashing.file_digest(path)
