"""LoRA through peft, stored in PEFT's own format and tied to the base model it was trained on.

On disk an adapter is what `PeftModel.save_pretrained` writes, `adapter_config.json` and
`adapter_model.safetensors`, so any PEFT user or server can load it; `base_model.json` beside it
records the base model's name and fingerprint. Loading reads safetensors only (no pickle) and
refuses an adapter whose base differs from the one configured.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, List, Optional

from spacy.util import registry

from .errors import AdapterError
from .loading import fingerprint

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
BASE_IDENTITY = "base_model.json"

# The seven projection matrices of a LLaMA block.
LLAMA_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@registry.misc("spacy_cllmfs.LoRA.v1")
def lora_config(
    r: int = 32,
    alpha: int = 16,
    dropout: float = 0.05,
    target_modules: Optional[List[str]] = None,
):
    """peft's LoraConfig; defaults from the paper's public relatives."""
    from peft import LoraConfig, TaskType

    if r < 1:
        raise ValueError(f"LoRA rank r must be at least 1, got {r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}.")
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules or LLAMA_PROJECTIONS),
    )


def attach(base_model, config):
    """Wrap a base model with a fresh LoRA adapter; only the adapter's weights train."""
    import copy

    from peft import get_peft_model

    return get_peft_model(base_model, copy.deepcopy(config))


def identity(model, base_name: str) -> dict:
    return {"name": base_name, "fingerprint": fingerprint(model)}


def save(peft_model, path: Path, base: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    # save_embedding_layers=False: LoRA leaves the embeddings alone, and "auto" would look the
    # base model up on the hub.
    peft_model.save_pretrained(str(path), safe_serialization=True, save_embedding_layers=False)
    # peft also writes a model card; the adapter folder holds the adapter and nothing else.
    (path / "README.md").unlink(missing_ok=True)
    (path / BASE_IDENTITY).write_text(json.dumps(base, indent=2), encoding="utf8")


def save_replacing(peft_model, target: Path, base: dict) -> None:
    """Save to `target`, replacing what is there only once the new adapter is whole.

    The new adapter is written beside the old one, then swapped in: a save that is interrupted
    (e.g. spacy train stopped while writing model-last) leaves the old adapter whole.
    """
    target = Path(target)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    old = _old(target)
    try:
        save(peft_model, fresh, base)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(fresh, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def saved_folder(target: Path) -> Optional[Path]:
    """The adapter saved at `target`, or the old one if a save stopped between its renames."""
    target = Path(target)
    for folder in (target, _old(target)):
        if folder.exists():
            return folder
    return None


def _old(target: Path) -> Path:
    return target.parent / f".{target.name}-old"


def folder_to_bytes(write: Callable[[Path], None]) -> bytes:
    """What `write(folder)` writes (e.g. a component's to_disk), as bytes."""
    import srsly  # here, not at the top: scripts/train_rows.py uses this module without spaCy

    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        files = {
            str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
        }
    return srsly.msgpack_dumps(files)


def bytes_to_folder(data: bytes, read: Callable[[Path], object]) -> None:
    """The inverse of folder_to_bytes: unpack into a temporary folder and `read` it."""
    import srsly

    with tempfile.TemporaryDirectory() as tmp:
        for name, content in srsly.msgpack_loads(data).items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        read(Path(tmp))


def _checked(path: Path, base: dict):
    """The LoraConfig of the adapter saved at `path`, once its files and base model check out."""
    from peft import LoraConfig

    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, BASE_IDENTITY):
        if not (path / name).is_file():
            raise AdapterError(
                f"The adapter at {path} has no {name}. An adapter folder holds "
                f"{ADAPTER_CONFIG}, {ADAPTER_WEIGHTS} (safetensors only, never pickle) and "
                f"{BASE_IDENTITY}, as nlp.to_disk writes them."
            )
    try:
        saved = json.loads((path / BASE_IDENTITY).read_text(encoding="utf8"))
        config = LoraConfig.from_pretrained(str(path))
    except (ValueError, TypeError) as err:
        raise AdapterError(f"The adapter at {path} has an unreadable config: {err}") from err
    if saved.get("fingerprint") != base["fingerprint"]:
        raise AdapterError(
            f"The adapter at {path} was trained on the base model {saved.get('name')!r} "
            f"(fingerprint {saved.get('fingerprint')}), but the pipeline's base model is "
            f"{base['name']!r} (fingerprint {base['fingerprint']}). Set the component's "
            f"base_model to the one the adapter was trained on, or train a new adapter."
        )
    return config


def _weights(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path / ADAPTER_WEIGHTS))
    except (SafetensorError, OSError) as err:
        raise AdapterError(
            f"The adapter weights {path / ADAPTER_WEIGHTS} are corrupted ({err}). "
            f"Restore them from the saved pipeline or train the adapter again."
        ) from err


def load(base_model, path: Path, base: dict):
    """Put the adapter saved at `path` onto `base_model` (a plain transformers model)."""
    from peft import get_peft_model

    config = _checked(path, base)
    weights = _weights(path)
    # PEFT saves `inference_mode: true`; a loaded pipeline should still train (resume,
    # fine-tune further), so the LoRA weights stay trainable. Inference runs without grad.
    config.inference_mode = False
    peft_model = get_peft_model(base_model, config)
    _set_weights(peft_model, weights, path / ADAPTER_WEIGHTS)
    return peft_model


def _set_weights(peft_model, weights: dict, source, adapter_name: str = "default") -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, weights, adapter_name=adapter_name)
    missing = [key for key in result.missing_keys if "lora_" in key and f".{adapter_name}." in key]
    if result.unexpected_keys or missing:
        raise AdapterError(
            f"The adapter weights {source} do not match its config "
            f"(missing: {missing[:3]}, unexpected: {list(result.unexpected_keys)[:3]})."
        )


def interpolate(peft_model, start: Path, weight: float, base: dict):
    """Weight-space ensembling of a trained adapter with the adapter it started from (WiSE-FT,
    Wortsman et al., 2022, for LoRA): a new adapter whose update to every projection is exactly
    `(1 - weight)` x the start adapter's plus `weight` x the trained one's. peft's
    `add_weighted_adapter` with `combination_type="cat"` builds it (the two ranks add up: rank
    16 + 16 gives 32, alpha equal to the rank). `weight = 1` is the trained adapter's function,
    `0` the start's. Returns a new peft model on the same base weights (the old one is taken
    apart)."""
    import copy

    from peft import get_peft_model, get_peft_model_state_dict

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"The interpolation weight must be in [0, 1], got {weight}.")
    start = Path(start)
    config = _checked(start, base)
    config.inference_mode = False
    peft_model.add_adapter("start", config)
    _set_weights(peft_model, _weights(start), start / ADAPTER_WEIGHTS, "start")
    peft_model.add_weighted_adapter(["start", "default"], [1.0 - weight, weight], "mixed",
                                    combination_type="cat")
    mixed = copy.deepcopy(peft_model.peft_config["mixed"])
    # save_embedding_layers=False: as in save(), no hub lookup for the embeddings LoRA leaves alone
    weights = get_peft_model_state_dict(peft_model, adapter_name="mixed",
                                        save_embedding_layers=False)
    mixed.inference_mode = False
    result = get_peft_model(peft_model.unload(), mixed)
    _set_weights(result, weights, "the interpolated adapter")
    return result
