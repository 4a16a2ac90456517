"""A transparency checklist for a model folder or hub id, inspired by the Foundation Model Transparency Index.

It is *not* an FMTI score: the FMTI (Bommasani et al. 2023) rates developers on 100 indicators by
expert review. This checks what a released model artefact itself discloses (an HF folder, a hub id, or a .gguf file
and its metadata), item by item:
config and tokenizer present, weights in safetensors, a licence, the model-card sections a
reader needs (intended use, limitations, training data, evaluation, environmental impact),
and whether training compute and training data are recorded. Template placeholders such as
"[More Information Needed]" and HTML comments count as missing (a line holding one says nothing). The score is the fraction of
items met; every item is listed with the evidence found.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from beyondscale.errors import UserError

PROBE_VERSION = "transparency-1"
PLACEHOLDERS = re.compile(
    r"\[more information needed\]|more information needed|\[needs more information\]|\[optional\]|\bTBD\b|\bTODO\b",
    re.IGNORECASE,
)
SECTIONS = {
    "card_intended_use": ("intended use", "uses", "direct use", "use cases", "how to use"),
    "card_limitations": ("limitation", "bias, risks", "risks", "out-of-scope"),
    "card_training_data": ("training data", "training dataset", "pretraining data"),
    "card_evaluation": ("evaluation", "results", "benchmark"),
    "card_environmental_impact": ("environmental impact", "carbon", "emissions", "energy"),
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
COMPUTE = re.compile(r"(flop|gpu[- ]?hours?|tpu[- ]?hours?|compute|petaflop)", re.IGNORECASE)


@dataclass
class Item:
    item: str
    met: bool
    evidence: str


def meaningful(text: str) -> str:
    """Text with comments, placeholders and markup removed; empty when nothing real is left."""
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    # A line holding a placeholder ("- **Hours used:** [More Information Needed]") says nothing.
    text = "\n".join(line for line in text.splitlines() if not PLACEHOLDERS.search(line))
    text = re.sub(r"[#*_`>|\-:\[\]]", " ", text)
    return " ".join(text.split())


def split_card(card: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """(YAML front matter, [(heading, body with its sub-sections)])."""
    meta: dict[str, Any] = {}
    match = re.match(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", card, flags=re.DOTALL)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
            meta = loaded if isinstance(loaded, dict) else {}
        except yaml.YAMLError:
            meta = {}
        card = card[match.end():]
    heads = [(m.start(), m.end(), len(m.group(1)), m.group(2).strip())
             for m in re.finditer(r"^(#{1,6})\s+(.+)$", card, flags=re.MULTILINE)]
    sections = []
    for i, (_, end, level, title) in enumerate(heads):
        stop = next((s for s, _, lv, _ in heads[i + 1:] if lv <= level), len(card))
        sections.append((title, card[end:stop]))
    return meta, sections


def _section_item(name: str, sections: list[tuple[str, str]]) -> Item:
    keys = SECTIONS[name]
    for title, body in sections:
        if any(k in title.lower() for k in keys):
            real = meaningful(body)
            if real:
                return Item(name, True, f"section '{title}': {real[:60]}")
    found = [t for t, _ in sections if any(k in t.lower() for k in keys)]
    return Item(name, False, f"section '{found[0]}' holds only placeholders" if found else "no such section")


def _licence(meta: dict[str, Any], files: set[str], sections: list[tuple[str, str]]) -> Item:
    if isinstance(meta.get("license"), str) and meaningful(meta["license"]):
        return Item("licence", True, f"card metadata license: {meta['license']}")
    lic = sorted(f for f in files if f.upper().startswith(("LICENSE", "LICENCE", "COPYING")))
    if lic:
        return Item("licence", True, f"file {lic[0]}")
    for title, body in sections:
        if title.lower().startswith(("license", "licence")) and meaningful(body):
            return Item("licence", True, f"section '{title}'")
    return Item("licence", False, "no license in card metadata, no LICENSE file, no licence section")


def _compute(record: dict[str, Any] | None, sections: list[tuple[str, str]]) -> Item:
    if record and record.get("train_flops"):
        return Item("training_compute_recorded", True, f"lab record train_flops={record['train_flops']:.3g}")
    for title, body in sections:
        for line in meaningful_lines(body):
            if COMPUTE.search(line) and re.search(r"\d", line):
                return Item("training_compute_recorded", True, f"'{title}': {line[:60]}")
    return Item("training_compute_recorded", False, "no FLOPs, GPU/TPU hours or compute figure")


def meaningful_lines(body: str) -> list[str]:
    return [m for m in (meaningful(line) for line in re.sub(r"<!--.*?-->", " ", body, flags=re.DOTALL)
                        .splitlines()) if m]


def _data(record: dict[str, Any] | None, meta: dict[str, Any]) -> Item:
    if record and (record.get("data") or {}).get("data_hash"):
        return Item("training_data_recorded", True, f"lab record data hash {record['data']['data_hash']}")
    datasets = meta.get("datasets")
    if isinstance(datasets, list) and [d for d in datasets if isinstance(d, str) and d.strip()]:
        return Item("training_data_recorded", True, f"card metadata datasets: {', '.join(map(str, datasets))[:60]}")
    return Item("training_data_recorded", False, "no datasets in card metadata and no lab data record")


def checklist(files: set[str], card: str | None, record: dict[str, Any] | None) -> list[Item]:
    """Every item, met or not, from a listing of the model's files, its README and its lab record."""
    meta, sections = split_card(card or "")
    tok = sorted(files & set(TOKENIZER_FILES))
    st = sorted(f for f in files if f.endswith(".safetensors"))
    items = [
        Item("config_present", "config.json" in files, "config.json" if "config.json" in files else "missing"),
        Item("tokenizer_present", bool(tok), ", ".join(tok) or "no tokenizer file"),
        Item("weights_safetensors", bool(st), ", ".join(st[:3]) or "no *.safetensors weights"),
        _licence(meta, files, sections),
        Item("model_card_present", bool(card and meaningful(card)), "README.md" if card else "no README.md"),
    ]
    items += [_section_item(name, sections) for name in SECTIONS]
    items += [_compute(record, sections), _data(record, meta)]
    return items


def summarize(model: str, items: list[Item]) -> dict[str, Any]:
    met = sum(i.met for i in items)
    return {"model": model, "label": "transparency checklist (inspired by the Foundation Model Transparency Index; "
                                     "not an FMTI score)",
            "score": met / len(items), "met": met, "total": len(items), "items": [asdict(i) for i in items]}


def check_folder(folder: str | Path) -> dict[str, Any]:
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UserError(f"--model {folder}: not a folder (give a model folder or a hub id)")
    files = {p.name for p in path.iterdir() if p.is_file()}
    card = (path / "README.md").read_text(encoding="utf-8", errors="replace") if "README.md" in files else None
    record = None
    if "beyondscale_lab.json" in files:
        try:
            record = json.loads((path / "beyondscale_lab.json").read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{path / 'beyondscale_lab.json'}: not valid JSON") from None
    return summarize(str(path), checklist(files, card, record))


def check_hub(repo_id: str) -> dict[str, Any]:
    """The same checklist from the hub's file list and README (needs network access to the hub)."""
    from huggingface_hub import HfApi, hf_hub_download

    try:
        files = {Path(s.rfilename).name for s in HfApi().model_info(repo_id).siblings or []}
        card = Path(hf_hub_download(repo_id, "README.md")).read_text(encoding="utf-8") if "README.md" in files else None
    except Exception as err:  # noqa: BLE001 - offline, gated, missing
        raise UserError(f"--model {repo_id}: cannot read from the hub ({str(err).splitlines()[0][:160]})") from None
    return summarize(repo_id, checklist(files, card, None))


def _gguf_fields(path: Path) -> dict[str, str]:
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
    except ImportError:
        raise UserError(f"--model {path}: reading .gguf metadata needs `pip install 'beyondscale[gguf]'`") from None
    except Exception as err:  # noqa: BLE001 - any parse failure means an unreadable file
        raise UserError(f"--model {path}: not a readable GGUF file ({str(err).splitlines()[0][:120]})") from None
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("general.") or key in ("tokenizer.ggml.model",) or key.endswith(".block_count"):
            try:
                out[key] = bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
            except (IndexError, TypeError, ValueError):
                out[key] = "?"
    return out


def check_gguf(path: Path) -> dict[str, Any]:
    """A GGUF file carries its config, tokenizer and licence as metadata; the card is a README beside it."""
    meta = _gguf_fields(path)
    files = {p.name for p in path.parent.iterdir() if p.is_file()}
    card = (path.parent / "README.md").read_text(encoding="utf-8", errors="replace") if "README.md" in files else None
    items = checklist(files, card, None)
    arch = meta.get("general.architecture")
    lic = meta.get("general.license", "")
    fixes = {
        "config_present": Item("config_present", bool(arch), f"GGUF metadata general.architecture={arch}"),
        "tokenizer_present": Item("tokenizer_present", "tokenizer.ggml.model" in meta,
                                  "GGUF metadata tokenizer.ggml.model"),
        "weights_safetensors": Item("weights_safetensors", False, f"GGUF weights ({path.name}), not safetensors"),
    }
    if lic.strip():
        fixes["licence"] = Item("licence", True, f"GGUF metadata general.license: {lic}")
    return summarize(str(path), [fixes.get(i.item, i) for i in items])


def check(spec: str) -> dict[str, Any]:
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return check_gguf(path)
    if path.exists() or spec.startswith((".", "/", "~")):
        return check_folder(path)
    return check_hub(spec)
