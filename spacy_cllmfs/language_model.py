"""The model's lifecycle in one holder: the base model, its LoRA adapter and its tokenizer.

`LanguageModel` loads the base weights on demand (never while a config is validated), attaches
a fresh adapter or a saved one, saves the adapter in PEFT's format, and takes the LoRA layers
off again to reuse the base weights for a new adapter. The component and the spacy-llm bridge
both use it. It is a torch module, so that thinc's PyTorchShim sees the adapter's parameters
(and trains them) once they exist; the registered architecture below wraps it as spaCy
components expect their model.
"""
from pathlib import Path
from typing import Optional

import torch
from spacy.util import registry
from thinc.api import Model, PyTorchShim

from . import adapter, shipped
from .loading import BaseModelSpec


class LanguageModel(torch.nn.Module):
    def __init__(self, base_model: BaseModelSpec, lora=None, start: str = shipped.DEFAULT_START):
        super().__init__()
        self.start = shipped.validate_start(start)  # what initialize starts from: shipped.py
        self.base_model = base_model  # a spec: no weights until something needs them
        self.lora = lora  # peft's LoraConfig for fresh adapters (None: load saved ones only)
        self.lm = None  # the peft model (or the bare base model), once loaded
        self.tokenizer = None
        self.identity: Optional[dict] = None  # the base's name and fingerprint
        self._merged = False  # the adapter folded into the base weights (merge)
        # Bumped whenever the weights change (merge, unmerge, a new adapter, `changed`): what
        # was computed from the weights (the decoder's cached prefix) is valid for one value.
        self.generation = 0

    @property
    def loaded(self) -> bool:
        return self.lm is not None

    @property
    def device(self) -> torch.device:
        return self.lm.device

    @property
    def base(self):
        """The transformers model under the adapter."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    @property
    def context(self) -> Optional[int]:
        """The model's context size in tokens (None if its config does not say)."""
        return getattr(self.base.config, "max_position_embeddings", None)

    @property
    def merged(self) -> bool:
        return self._merged

    def changed(self) -> None:
        """Say that the weights changed outside this class (an optimizer step, swapped
        parameters): anything computed from them must be computed again."""
        self.generation += 1

    def merge(self) -> bool:
        """Fold the adapter into the base weights for decoding (peft's merge_adapter): the same
        function up to float rounding, one matrix product per projection instead of three.
        Only in float32 (or float64): in bfloat16 or float16 the adapter's small update would be
        rounded away. Not while training. Whoever changes the adapter's weights or takes it
        off calls `unmerge` first (the component does: update, finish_update, use_params; and
        `_take_base` here). Returns whether the weights changed."""
        if self._merged or self.lm is None or not hasattr(self.lm, "merge_adapter") \
                or self.lm.training:
            return False
        if next(self.lm.parameters()).dtype not in (torch.float32, torch.float64):
            return False
        self.lm.merge_adapter()
        self._merged = True
        self.changed()
        return True

    def unmerge(self) -> bool:
        """Take the adapter's update back out of the base weights (up to float rounding).
        Returns whether the weights changed."""
        if not self._merged:
            return False
        self.lm.unmerge_adapter()
        self._merged = False
        self.changed()
        return True

    def attach_initial(self, template: str) -> None:
        """The adapter training starts from, as `start` says (shipped.py)."""
        base = self._take_base()
        identity = adapter.identity(base, self.base_model.name)
        folder = shipped.start_folder(self.start, identity, template)
        if folder is None:
            if self.lora is None:
                raise ValueError("This LanguageModel has no LoRA config for a blank adapter.")
            self._set(adapter.attach(base, self.lora), identity)
        else:
            self._set(adapter.load(base, folder, identity), identity)

    def load_adapter(self, folder: Optional[Path]) -> None:
        """The adapter saved at `folder` (PEFT format) on the base model; None: the base alone."""
        base = self._take_base()
        identity = adapter.identity(base, self.base_model.name)
        self._set(base if folder is None else adapter.load(base, Path(folder), identity), identity)

    def interpolate(self, start: Path, weight: float) -> None:
        """Replace the adapter by its interpolation with the adapter at `start` (adapter.py):
        `weight` of the current adapter's update, `1 - weight` of the start's."""
        if self.lm is None or not hasattr(self.lm, "add_weighted_adapter"):
            raise ValueError("No adapter to interpolate: initialize or load the pipeline first.")
        self.unmerge()
        self._set(adapter.interpolate(self.lm, Path(start), weight, self.identity), self.identity)

    def save_adapter(self, folder: Path) -> None:
        """Save the adapter (PEFT format) to `folder`, replacing an older one only when whole."""
        adapter.save_replacing(self.lm, folder, self.identity)

    def _take_base(self):
        """The base weights: taken off the current adapter if loaded, else loaded now."""
        if self.lm is None:
            base, self.tokenizer = self.base_model.load()
            return base
        self.unmerge()  # unload takes the LoRA layers off as they are: the base must be bare
        base = self.lm.unload() if hasattr(self.lm, "unload") else self.lm
        self.lm = None
        return base

    def _set(self, lm, identity: dict) -> None:
        lm.eval()
        self.lm, self.identity, self._merged = lm, identity, False
        self.changed()


def _no_forward(model, inputs, is_train):
    raise NotImplementedError(
        "The cllmfs_ner component drives its language model directly (model.attrs"
        "['language_model']); this thinc model exists for spaCy's trainer (its shim)."
    )


@registry.architectures("spacy_cllmfs.CausalLMLoRA.v1")
def causal_lm_lora(base_model: BaseModelSpec, lora, start: str = shipped.DEFAULT_START) -> Model:
    """[components.cllmfs_ner.model]: a causal LM of the LLaMA family with a LoRA adapter.
    initialize starts from `start`: "default" (the shipped general adapter where it fits the
    base model and template, else blank), "blank", a shipped adapter's name or a folder.
    No weights load here; they load on initialize, on first use or in from_disk."""
    holder = LanguageModel(base_model, lora, start)
    return Model(
        "cllmfs_causal_lm_lora",
        _no_forward,
        shims=[PyTorchShim(holder)],
        attrs={"language_model": holder},
    )
