"""The CLLMFS training objective: cross-entropy on the response tokens plus `weight` x InfoNCE
on the hidden states of one mid-deep layer (contrastive.py), as a registered function so that
the ablations are config swaps:

    [components.cllmfs_ner.loss]
    @losses = "spacy_cllmfs.CLLMFSLoss.v2"
    weight = 0.0        # plain LoRA fine-tuning (no contrastive term)
    noise = 0.0         # InfoNCE without the Gaussian noise

v2 (the default) scales the noise to each positive's norm and adds the batch's entities of other
types to the negatives; v1 keeps the paper's absolute noise and neighbour-only negatives (the
shipped general adapter was trained with it).

The loss of a batch is computed in passes (passes.py): each sentence's shared prompt is read
once for all its type rows, and no pass holds more than `max_tokens` padded positions. The
passes' losses are shares of the batch's: cross-entropy is divided by the batch's response
tokens and InfoNCE by the batch's entities, so they add up to the loss of one pass over all.
One exception: v2's other-type negatives come from the entities of the same pass (a sentence's
rows share a pass unless they alone exceed the budget), so they can differ with the budget.
"""
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from spacy.util import registry

from . import passes
from .contrastive import default_layer, info_nce, pairs
from .rows import Row


class CLLMFSLoss:
    def __init__(
        self,
        weight: float = 0.1,
        temperature: float = 0.1,
        noise: float = 0.1,
        layer: Optional[int] = None,
        negative_window: int = 2,
        relative_noise: bool = False,
        cross_type_negatives: bool = False,
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
        self.relative_noise = relative_noise
        self.cross_type_negatives = cross_type_negatives

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

    def passes(
        self, lm, rows: Sequence[Row], pad_id: int, *, training: bool, max_tokens: int
    ) -> Iterator[Tuple[torch.Tensor, Dict[str, float]]]:
        """(this pass's share of the batch loss, counts) for each pass over a batch of rows;
        the shares sum to the batch's loss. Backpropagate each before the next is computed."""
        n_targets = sum(len(r.response) for r in rows)
        n_pairs = len(pairs(rows, self.negative_window)) if self.weight > 0 else 0
        layer = self.layer_of(lm.get_base_model()) if n_pairs else None
        for groups in passes.plan(rows, max_tokens):
            out = passes.run(lm, groups, pad_id, layer)
            ce = torch.nn.functional.cross_entropy(
                out.logits.float(), out.targets, reduction="sum"
            )
            loss = ce / n_targets
            # A row answers "none" with the end token alone (prompts.response_ids).
            ends = torch.tensor([r.response[-1] for r in out.rows], device=out.targets.device)
            opens = out.logits[out.first].detach().argmax(-1) != ends
            counts = {"cross_entropy": float(ce.detach()), "info_nce": 0.0,
                      "rows": len(out.rows), "answer_model": int(opens.sum()),
                      "answer_gold": sum(bool(r.entities) for r in out.rows),
                      "positions": passes.cost(groups)}
            if layer is not None:
                nce = info_nce(
                    out.hidden, out.rows, temperature=self.temperature, noise=self.noise,
                    window=self.negative_window, training=training,
                    relative=self.relative_noise, cross_type=self.cross_type_negatives,
                    reduction="sum",
                )
                if nce is not None:
                    counts["info_nce"] = float(nce.detach())
                    loss = loss + self.weight * nce / n_pairs
            yield loss, counts

    def __call__(
        self, lm, rows: Sequence[Row], pad_id: int, *, training: bool, max_tokens: int = 1 << 30
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """(loss, its parts) of a batch of training rows on a peft model, without backward."""
        total, counts = None, []
        for loss, part in self.passes(lm, rows, pad_id, training=training,
                                      max_tokens=max_tokens):
            total = loss if total is None else total + loss
            counts.append(part)
        if total is None:  # no rows
            total = torch.zeros((), device=lm.device)
        return total, self.summary(counts, rows)

    def summary(self, counts: Sequence[Dict[str, float]], rows: Sequence[Row]) -> Dict:
        """The parts of a batch's loss from the counts of its passes (see `summary`)."""
        return summary(counts, rows, self.negative_window if self.weight > 0 else 0)


def summary(counts: Sequence[Dict[str, float]], rows: Sequence[Row], window: int) -> Dict:
    """The parts of a batch's loss from its passes' counts: mean cross-entropy per response
    token, mean InfoNCE per entity (when there is one), the share of rows whose gold answer
    is not "none" and of those the model would open an answer for (its first token, greedy)."""
    n_rows = sum(c["rows"] for c in counts)
    if not n_rows:
        return {"cross_entropy": 0.0, "rows": 0, "passes": 0, "positions": 0}
    parts = {
        "cross_entropy": sum(c["cross_entropy"] for c in counts)
        / sum(len(r.response) for r in rows),
        "answer_rate_gold": sum(c["answer_gold"] for c in counts) / n_rows,
        "answer_rate": sum(c["answer_model"] for c in counts) / n_rows,
        "rows": n_rows,
        "passes": len(counts),
        "positions": sum(c["positions"] for c in counts),
    }
    n_pairs = len(pairs(rows, window)) if window else 0
    if n_pairs:
        parts["info_nce"] = sum(c["info_nce"] for c in counts) / n_pairs
    return parts


# The defaults are written once, in CLLMFSLoss; the registered blocks read them.
_DEFAULT = CLLMFSLoss()


@registry.losses("spacy_cllmfs.CLLMFSLoss.v1")
def cllmfs_loss(
    weight: float = _DEFAULT.weight,
    temperature: float = _DEFAULT.temperature,
    noise: float = _DEFAULT.noise,
    layer: Optional[int] = _DEFAULT.layer,
    negative_window: int = _DEFAULT.negative_window,
) -> CLLMFSLoss:
    """[components.cllmfs_ner.loss], the paper's form: cross-entropy + weight x InfoNCE at
    `layer` (default round(0.8125 x depth)), positives with Gaussian noise of standard
    deviation `noise` in training, the entity's neighbours as negatives. general-ner.v1 and
    the source configs use it; v2 is the component's default."""
    return CLLMFSLoss(weight, temperature, noise, layer, negative_window)


@registry.losses("spacy_cllmfs.CLLMFSLoss.v2")
def cllmfs_loss_v2(
    weight: float = _DEFAULT.weight,
    temperature: float = _DEFAULT.temperature,
    noise: float = _DEFAULT.noise,
    layer: Optional[int] = _DEFAULT.layer,
    negative_window: int = _DEFAULT.negative_window,
    cross_type_negatives: bool = True,
) -> CLLMFSLoss:
    """[components.cllmfs_ner.loss]: as v1, but the noise vector's norm is about `noise` times
    the positive's, and other types' entities in the batch are negatives too."""
    return CLLMFSLoss(weight, temperature, noise, layer, negative_window,
                      relative_noise=True, cross_type_negatives=cross_type_negatives)
