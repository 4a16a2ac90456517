"""Streaming inputs: text files, folders, JSONL and hub datasets, one document at a time.

A text file is one document (its id: the path relative to the input); a `.jsonl` file holds one
JSON object per line with a `text` field and an optional `id` (default `FILE:LINE`); a folder is
read recursively in name order (hidden entries skipped); `hub:NAME` streams a `datasets` dataset
(`streaming=True`, never downloaded whole). Nothing is held beyond the current line, so memory
stays flat whatever the input size. Every mistake is one `UserError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from beyondscale.errors import UserError

HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class Doc:
    """One input document; `nbytes` is its size on disk (for the progress bar and MB/s)."""

    id: str
    text: str
    nbytes: int


@dataclass(frozen=True)
class HubOptions:
    """How to stream a hub dataset: config, split and the text / id fields."""

    config: str | None = None
    split: str = "train"
    text_field: str = "text"
    id_field: str = "id"


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{where}: not UTF-8 text (invalid byte at offset {error.start})") from None


def _jsonl_docs(path: Path, text_field: str, id_field: str) -> Iterator[Doc]:
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            line = _decode(raw, where)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(obj, dict) or text_field not in obj:
                raise UserError(f"{where}: no {text_field!r} field (each line needs a JSON object with one)")
            if not isinstance(obj[text_field], str):
                raise UserError(f"{where}: field {text_field!r} is {type(obj[text_field]).__name__}, not a string")
            doc_id = obj.get(id_field)
            yield Doc(str(doc_id) if doc_id is not None else f"{path.name}:{lineno}", obj[text_field], len(raw))


def _file_docs(path: Path, label: str, text_field: str, id_field: str) -> Iterator[Doc]:
    if path.suffix == ".jsonl":
        yield from _jsonl_docs(path, text_field, id_field)
    else:
        raw = path.read_bytes()
        yield Doc(label, _decode(raw, str(path)), len(raw))


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _hub_docs(name: str, options: HubOptions) -> Iterator[Doc]:
    import datasets

    try:
        stream = datasets.load_dataset(name, options.config, split=options.split, streaming=True)
    except Exception as error:  # noqa: BLE001 - any loading failure is the user's dataset name or network
        raise UserError(f"{HUB_PREFIX}{name}: cannot stream this dataset ({type(error).__name__}: {error})") from None
    for index, row in enumerate(stream):
        text = row.get(options.text_field)
        if not isinstance(text, str):
            raise UserError(f"{HUB_PREFIX}{name} row {index}: no string field {options.text_field!r}")
        doc_id = row.get(options.id_field)
        yield Doc(str(doc_id) if doc_id is not None else f"{name}:{index}", text, len(text.encode("utf-8")))


def iter_documents(inputs: list[str], hub: HubOptions | None = None) -> Iterator[Doc]:
    """Every document of every input, in order, streamed."""
    hub = hub or HubOptions()
    for item in inputs:
        if item.startswith(HUB_PREFIX):
            yield from _hub_docs(item[len(HUB_PREFIX):], hub)
            continue
        path = Path(item)
        if path.is_dir():
            for file in _folder_files(path):
                yield from _file_docs(file, file.relative_to(path).as_posix(), hub.text_field, hub.id_field)
        elif path.is_file():
            yield from _file_docs(path, path.name, hub.text_field, hub.id_field)
        else:
            raise UserError(f"{item}: no such file or folder")


def input_bytes(inputs: list[str]) -> int | None:
    """Total size on disk of the inputs (None when a hub dataset makes it unknown)."""
    total = 0
    for item in inputs:
        if item.startswith(HUB_PREFIX):
            return None
        path = Path(item)
        files = _folder_files(path) if path.is_dir() else [path] if path.is_file() else []
        total += sum(f.stat().st_size for f in files)
    return total


def fingerprint(inputs: list[str], hub: HubOptions | None = None) -> tuple[str, int, int]:
    """(content hash of the document stream, documents, bytes): one validating pass, nothing kept.

    The hash covers each document's id and text (ids default to file names, so renaming a file
    without ids changes it; so does editing one character); a bad line is found here, before any
    output is touched.
    """
    digest = hashlib.sha256()
    count = nbytes = 0
    for doc in iter_documents(inputs, hub):
        for part in (doc.id, doc.text):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        count += 1
        nbytes += doc.nbytes
    if count == 0:
        raise UserError(f"{' '.join(inputs)}: empty input, no documents to curate")
    return digest.hexdigest(), count, nbytes
