"""The adapters shipped with the package, and where a new adapter starts from.

`[components.cllmfs_ner.model] start` says what `initialize` puts on the base model:

- "default": the shipped general adapter for the component's template (DEFAULTS: general-ner.v1
  for ner.v1) when it fits, that is when the base model is the one it was trained on (same
  fingerprint) and the component uses the template it was trained with; otherwise a blank
  adapter, with a log line saying why (never an error);
- "blank": a fresh LoRA adapter from the `lora` settings (the behaviour before general-ner.v1);
- a shipped adapter's name, or a folder holding a saved adapter (PEFT format with
  base_model.json, as nlp.to_disk writes it): that adapter, or an error if it does not fit.

An adapter that is loaded keeps its own LoRA settings (rank, targets); `lora` shapes blank ones.
"""
import json
import logging
from importlib import resources
from pathlib import Path
from typing import List, Optional

from .errors import AdapterError

logger = logging.getLogger("spacy_cllmfs")

DEFAULT = "general-ner.v1"
# What `initialize` starts from unless model.start says otherwise (validate_start: the values)
DEFAULT_START = "default"
# the shipped adapter that "default" starts from, by template (others: DEFAULT, which then
# does not fit, so a blank adapter)
DEFAULTS = {"ner.v1": DEFAULT}
CARD = "cllmfs.json"  # beside a shipped adapter: its template, data and training


def shipped_names() -> List[str]:
    root = resources.files("spacy_cllmfs") / "adapters"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def shipped_folder(name: str) -> Path:
    return Path(str(resources.files("spacy_cllmfs") / "adapters" / name))


def card(folder: Path) -> dict:
    path = Path(folder) / CARD
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else {}


def validate_start(start: str) -> str:
    if not isinstance(start, str) or not start:
        raise ValueError(f"model.start must be 'default', 'blank', a shipped adapter "
                         f"({shipped_names()}) or an adapter folder; got {start!r}.")
    return start


def start_folder(start: str, identity: dict, template: str) -> Optional[Path]:
    """The adapter folder `initialize` loads, or None for a blank adapter."""
    if start == "blank":
        return None
    if start == "default":
        name = DEFAULTS.get(template, DEFAULT)
        folder = shipped_folder(name)
        why = _misfit(name, folder, identity, template)
        if why:
            logger.warning("cllmfs_ner: starting from a blank adapter: %s", why)
            return None
        return folder
    folder = shipped_folder(start) if start in shipped_names() else Path(start)
    if not folder.is_dir():
        raise AdapterError(
            f"model.start is {start!r}, which is neither 'default', 'blank', a shipped "
            f"adapter ({shipped_names()}) nor an existing folder."
        )
    trained_with = card(folder).get("template")
    if trained_with and trained_with != template:
        raise AdapterError(
            f"The adapter {start!r} was trained with the template {trained_with!r}, but the "
            f"component uses {template!r}: set the component's template to {trained_with!r}."
        )
    return folder  # adapter.load checks the base model's fingerprint


def _misfit(name: str, folder: Path, identity: dict, template: str) -> Optional[str]:
    """Why the shipped default does not fit this base model and template (None: it fits)."""
    info = card(folder)
    if not info:
        return f"this installation has no shipped adapter {name!r}."
    base = info.get("base_model", {})
    if base.get("fingerprint") != identity["fingerprint"]:
        return (f"{name} was trained on {base.get('name')!r}, and the base model "
                f"{identity['name']!r} is another model (its fingerprint differs).")
    if info.get("template") != template:
        return (f"{name} was trained with the template {info.get('template')!r}, and this "
                f"component uses {template!r}.")
    return None
