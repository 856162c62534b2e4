"""The CLLMFS contrastive term: InfoNCE on the hidden states of a mid-deep layer.

For every gold entity of a training row, the anchor is the type embedding (mean hidden state of
the type name's tokens in the question, or, for a joint template's row, where the prefix lists
the entity's type), the positive is the entity embedding (mean hidden state
of the entity's tokens in the text) and the negatives are the hidden states of the `window` text
tokens on each side of the entity, and with `cross_type` also the embeddings of the batch's
entities of other types (so that one type's entities are pushed away from another's). In
training, Gaussian noise is added to the positive (the paper's adversarial augmentation): of
standard deviation `noise` per dimension (`relative=False`, the paper's form), or scaled to the
positive's own norm so that the noise vector's norm is about `noise` times the positive's
(`relative=True`; hidden states have norms in the tens, which absolute noise of 0.1 does not
move). Similarities are cosines over `temperature`.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .rows import Row


def default_layer(num_layers: int) -> int:
    """The paper uses layer 26 of LLaMA-2-7B's 32: about 0.8 of the depth."""
    return round(0.8125 * num_layers)


def entity_positions(row: Row, start_char: int, end_char: int) -> List[int]:
    """Prompt positions of the text tokens that overlap [start_char, end_char)."""
    return [
        row.layout.text_start + i
        for i, (start, end) in enumerate(row.text.offsets)
        if start < end_char and end > start_char
    ]


def pairs(rows: Sequence[Row], window: int
          ) -> List[Tuple[int, str, List[int], List[int], List[int]]]:
    """(row, type, type positions, entity positions, negative positions) for each gold entity.

    Positions come from each row's layout (the Prompter's), so they hold for any template.
    """
    out = []
    for b, row in enumerate(rows):
        own = list(range(row.layout.name_start, row.layout.name_end))
        listed = {label: list(range(lo, hi)) for label, lo, hi in row.layout.names}
        text_lo, text_hi = row.layout.text_start, row.layout.text_end
        for label, start_char, end_char in row.typed_entities():
            name = listed.get(label, []) if row.entity_labels else own
            ent = entity_positions(row, start_char, end_char)
            if not ent or not name:
                continue
            # ent is contiguous (offsets increase), so both windows lie outside it.
            left = range(max(text_lo, ent[0] - window), ent[0])
            right = range(ent[-1] + 1, min(text_hi, ent[-1] + 1 + window))
            negatives = [*left, *right]
            if negatives:
                out.append((b, label, name, ent, negatives))
    return out


def info_nce(
    hidden: torch.Tensor,
    rows: Sequence[Row],
    *,
    temperature: float,
    noise: float,
    window: int,
    training: bool,
    relative: bool = False,
    cross_type: bool = False,
    generator: Optional[torch.Generator] = None,
    reduction: str = "mean",
) -> Optional[torch.Tensor]:
    """InfoNCE over the gold entities of the batch (mean, or sum with reduction="sum"); None
    when there is none.

    hidden: (batch, seq, dim) hidden states of the chosen layer, rows right-padded.
    """
    found = pairs(rows, window)
    if not found:
        return None
    entities = [hidden[b, ent].mean(dim=0) for b, _, _, ent, _ in found]
    labels = [label for _, label, _, _, _ in found]
    losses = []
    for i, (b, _, name, ent, negatives) in enumerate(found):
        anchor = hidden[b, name].mean(dim=0)
        positive = entities[i]
        if training and noise > 0:
            eps = torch.randn(
                positive.shape, generator=generator, device="cpu", dtype=torch.float32
            ).to(positive.device, positive.dtype)
            scale = noise * positive.detach().norm() / positive.numel() ** 0.5 if relative else noise
            positive = positive + scale * eps
        others = [hidden[b, negatives]]
        if cross_type:
            others += [entities[j][None] for j in range(len(found)) if labels[j] != labels[i]]
        candidates = torch.cat([positive[None], *others], dim=0)
        sims = F.cosine_similarity(anchor[None].float(), candidates.float(), dim=-1) / temperature
        losses.append(-torch.log_softmax(sims, dim=0)[0])
    total = torch.stack(losses)
    return total.sum() if reduction == "sum" else total.mean()
