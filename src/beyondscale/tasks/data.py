"""Loading a task's documents: local json/csv/parquet/text files, or a Hugging Face hub dataset.

Local files are read directly (json + pyarrow/pandas): fast, no cache written anywhere, and
errors name the file and line. Rows come back as plain dicts with the same values
`datasets.load_dataset` would give (JSON rows are aligned to the union of their keys, missing
keys as None, as the Arrow schema would make them). Anything else in `dataset_path` goes to
`datasets.load_dataset(path, name, split=..., **dataset_kwargs)`, exactly as lm-eval calls it.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beyondscale.errors import UserError

if TYPE_CHECKING:
    from beyondscale.tasks.spec import TaskSpec

LOCAL_BUILDERS = frozenset({"json", "csv", "parquet", "text"})
_LOCAL_KWARGS = {"json": {"field"}, "csv": {"sep", "delimiter"}, "parquet": set(), "text": set()}
_HUB_ONLY_KWARGS = {
    "revision",
    "verification_mode",
    "download_mode",
    "cache_dir",
    "token",
    "trust_remote_code",
}


def is_local(spec: TaskSpec) -> bool:
    """True when the documents come from local files rather than the hub."""
    return spec.dataset_path in LOCAL_BUILDERS


def data_files_by_split(spec: TaskSpec) -> dict[str, list[Path]]:
    """`data_files` as split -> files (a bare string or list is the `train` split, as in `datasets`)."""
    kwargs = spec.dataset_kwargs or {}
    files = kwargs.get("data_files")
    if files is None:
        raise UserError(
            f"task {spec.task}: dataset_path `{spec.dataset_path}` needs dataset_kwargs.data_files"
        )
    if isinstance(files, str | list):
        files = {"train": files}
    if not isinstance(files, dict):
        raise UserError(
            f"task {spec.task}: dataset_kwargs.data_files must be a path, a list or split -> paths"
        )
    out: dict[str, list[Path]] = {}
    for split, entry in files.items():
        entries = entry if isinstance(entry, list) else [entry]
        paths: list[Path] = []
        for p in entries:
            if not isinstance(p, str):
                raise UserError(f"task {spec.task}: data_files entry {p!r} for split {split} is not a path")
            if any(ch in p for ch in "*?["):
                matched = sorted(glob.glob(p, recursive=True))
                if not matched:
                    raise UserError(f"task {spec.task}: data_files pattern {p} matches no file")
                paths += [Path(m) for m in matched]
            else:
                path = Path(p)
                if not path.is_file():
                    raise UserError(f"task {spec.task}: data file {path} not found (split {split})")
                paths.append(path)
        out[str(split)] = paths
    return out


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, cached on (path, size, mtime) so repeated hashing is free."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def data_fingerprint(spec: TaskSpec) -> dict[str, Any]:
    """What identifies the data: local file bytes per split, or hub (path, name, revision)."""
    if is_local(spec):
        return {
            "local": spec.dataset_path,
            "files": {
                split: [file_digest(p) for p in paths] for split, paths in data_files_by_split(spec).items()
            },
        }
    kwargs = spec.dataset_kwargs or {}
    return {
        "hub": spec.dataset_path,
        "name": spec.dataset_name,
        "revision": kwargs.get("revision"),
        "data_files": kwargs.get("data_files"),
        "splits": [spec.test_split, spec.validation_split, spec.training_split, spec.fewshot_split],
    }


def load_split(spec: TaskSpec, split: str) -> list[dict[str, Any]]:
    """All documents of one split, in file order. Empty splits are a `UserError`."""
    if is_local(spec):
        by_split = data_files_by_split(spec)
        if split not in by_split:
            raise UserError(
                f"task {spec.task}: split `{split}` is not in dataset_kwargs.data_files "
                f"(splits there: {', '.join(by_split)}; a bare path or list is the `train` split)"
            )
        kwargs = _local_kwargs(spec)
        docs: list[dict[str, Any]] = []
        for path in by_split[split]:
            docs += _read_local(spec.dataset_path, path, kwargs)
        docs = _align(docs)
        where = ", ".join(str(p) for p in by_split[split])
    else:
        docs = load_hub_split(spec.dataset_path, spec.dataset_name, split, dict(spec.dataset_kwargs or {}))
        where = f"{spec.dataset_path}" + (f" ({spec.dataset_name})" if spec.dataset_name else "")
    if not docs:
        raise UserError(f"task {spec.task}: split `{split}` of {where} has no documents")
    return docs


def load_hub_split(
    path: str, name: str | None, split: str, dataset_kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """`datasets.load_dataset(path, name, split=split, **dataset_kwargs)` as a list of dicts.

    Tests replace this function to feed hand-written documents in the hub schema.
    """
    import datasets

    dataset_kwargs.pop("trust_remote_code", None)
    try:
        ds = datasets.load_dataset(path=path, name=name, split=split, **dataset_kwargs)
    except Exception as err:  # the hub client raises many types; all mean "cannot get this data"
        raise UserError(
            f"cannot load dataset {path}" + (f" ({name})" if name else "") + f" split {split}: {err}"
        ) from None
    return ds.to_list()


def _local_kwargs(spec: TaskSpec) -> dict[str, Any]:
    kwargs = {k: v for k, v in (spec.dataset_kwargs or {}).items() if k != "data_files"}
    allowed = _LOCAL_KWARGS[spec.dataset_path]
    for key in kwargs:
        if key not in allowed and key not in _HUB_ONLY_KWARGS:
            raise UserError(
                f"task {spec.task}: dataset_kwargs.{key} is not supported for local {spec.dataset_path} files"
                + (f" (supported: {', '.join(sorted(allowed))})" if allowed else "")
            )
    return {k: v for k, v in kwargs.items() if k in allowed}


def _read_local(builder: str, path: Path, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    if builder == "json":
        return _read_json(path, kwargs.get("field"))
    if builder == "text":
        return [{"text": line} for line in _decode_lines(path)]
    if builder == "csv":
        return _read_csv(path, kwargs)
    return _read_parquet(path)


def _decode_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise UserError(f"{path}: line {i} is not valid UTF-8 (byte {err.start} of the line)") from None
    return out


def _read_json(path: Path, field: str | None) -> list[dict[str, Any]]:
    lines = _decode_lines(path)
    text = "\n".join(lines)
    if field is not None or text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
        if field is not None:
            if not isinstance(data, dict) or field not in data:
                raise UserError(f"{path}: dataset_kwargs.field `{field}` is not a top-level key of the JSON")
            data = data[field]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UserError(f"{path}: expected a JSON list of objects (one object per document)")
        return data
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{path}:{i}: invalid JSON ({err.msg}); expected one JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def _read_csv(path: Path, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    import pandas as pd
    import pyarrow as pa

    try:
        frame = pd.read_csv(path, encoding="utf-8", **kwargs)
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid UTF-8 (byte {err.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UserError(f"{path}: cannot parse CSV ({str(err).splitlines()[0]})") from None
    try:
        return pa.Table.from_pandas(frame, preserve_index=False).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise UserError(f"{path}: a CSV column mixes types ({err})") from None


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{path}: cannot read parquet ({err})") from None


def _align(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every row the union of keys (missing -> None), like one Arrow schema for the split."""
    keys: dict[str, None] = {}
    for row in rows:
        for k in row:
            keys.setdefault(k, None)
    if all(len(row) == len(keys) for row in rows):
        return rows
    return [{k: row.get(k) for k in keys} for row in rows]
