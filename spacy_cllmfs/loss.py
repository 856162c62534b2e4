"""The CLLMFS training objective: cross-entropy on the response tokens plus `weight` x InfoNCE
on the hidden states of one mid-deep layer (contrastive.py), as a registered function so that
the ablations are config swaps:

    [components.cllmfs_ner.loss]
    @losses = "spacy_cllmfs.CLLMFSLoss.v1"
    weight = 0.0        # plain LoRA fine-tuning (no contrastive term)
    noise = 0.0         # InfoNCE without the Gaussian noise
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from spacy.util import registry

from .contrastive import default_layer, info_nce
from .rows import IGNORE, Row


class CLLMFSLoss:
    def __init__(
        self,
        weight: float = 0.1,
        temperature: float = 0.1,
        noise: float = 0.1,
        layer: Optional[int] = None,
        negative_window: int = 2,
    ):
        if weight < 0:
            raise ValueError(f"loss.weight (of the InfoNCE term) must be >= 0, got {weight}.")
        if temperature <= 0:
            raise ValueError(f"loss.temperature must be greater than 0, got {temperature}.")
        if noise < 0:
            raise ValueError(f"loss.noise (the Gaussian noise's scale) must be >= 0, got {noise}.")
        if layer is not None and layer < 1:
            raise ValueError(f"loss.layer must be at least 1, got {layer}.")
        if negative_window < 1:
            raise ValueError(f"loss.negative_window must be at least 1, got {negative_window}.")
        self.weight = weight
        self.temperature = temperature
        self.noise = noise
        self.layer = layer
        self.negative_window = negative_window

    def layer_of(self, base_model) -> int:
        """The layer (1-based) whose output the InfoNCE term reads."""
        depth = base_model.config.num_hidden_layers
        layer = self.layer or default_layer(depth)
        if layer > depth:
            raise ValueError(
                f"loss.layer is {layer}, but the base model has {depth} layers: "
                f"choose a layer from 1 to {depth} (default: {default_layer(depth)})."
            )
        return layer

    def __call__(
        self, lm, rows: Sequence[Row], batch: dict, *, training: bool
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """(loss, its parts as floats) of a batch of training rows on a peft model."""
        captured: List[torch.Tensor] = []
        hook = None
        if self.weight > 0:
            # Keep only layer l's output, instead of asking transformers for every layer's.
            base = lm.get_base_model()
            block = base.model.layers[self.layer_of(base) - 1]
            hook = block.register_forward_hook(
                lambda module, args, out: captured.append(out[0] if isinstance(out, tuple) else out)
            )
        # Position p predicts token p + 1; only response tokens have targets, so the LM head
        # runs only at the positions before one (in any row), not over the whole prompt.
        targets = batch["labels"][:, 1:]
        keep = (targets != IGNORE).any(dim=0).nonzero()[:, 0]
        try:
            output = lm(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                logits_to_keep=keep,
            )
        finally:
            if hook is not None:
                hook.remove()
        loss = torch.nn.functional.cross_entropy(
            output.logits.flatten(0, 1).float(),
            targets[:, keep].flatten(),
            ignore_index=IGNORE,
        )
        parts = {"cross_entropy": float(loss.detach())}
        if captured:
            nce = info_nce(
                captured[-1],
                rows,
                temperature=self.temperature,
                noise=self.noise,
                window=self.negative_window,
                training=training,
            )
            if nce is not None:
                parts["info_nce"] = float(nce.detach())
                loss = loss + self.weight * nce
        return loss, parts


@registry.losses("spacy_cllmfs.CLLMFSLoss.v1")
def cllmfs_loss(
    weight: float = 0.1,
    temperature: float = 0.1,
    noise: float = 0.1,
    layer: Optional[int] = None,
    negative_window: int = 2,
) -> CLLMFSLoss:
    """[components.cllmfs_ner.loss]: cross-entropy + weight x InfoNCE at `layer` (default
    round(0.8125 x depth)), positives with Gaussian noise of scale `noise` in training."""
    return CLLMFSLoss(weight, temperature, noise, layer, negative_window)
