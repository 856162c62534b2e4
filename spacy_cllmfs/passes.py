"""Training forward passes: each text read once for all of its type rows, in bounded passes.

A sentence asked about T types makes T rows whose prompts share everything up to the question
(the instruction prefix and the text). Reading each row whole costs T times the shared part; here
a pass first reads each sentence's shared part once (with gradients) and keeps its key/value
cache, then reads only each row's own part (question and response) on top of that cache. The
result is the same as reading every row whole (tests check the loss to float precision), at a
fraction of the positions when there are many types.

Passes are bounded by `max_tokens`, the padded positions of one pass (shared parts and rows
together), so that activation memory does not grow with the number of types or the batch size:
a batch that needs more runs as several passes whose gradients add up (pipe.py).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from transformers import DynamicCache

from .generation import common_prefix_length
from .rows import Row


@dataclass
class Group:
    """Rows whose prompts start with the same `shared` ids (one sentence's rows)."""

    rows: List[Row]
    shared: int  # how many leading prompt ids every row of the group has in common

    @property
    def context(self) -> Tuple[int, ...]:
        return self.rows[0].prompt[: self.shared]

    def suffix(self, row: Row) -> Tuple[int, ...]:
        return row.prompt[self.shared :] + row.response


def groups(rows: Sequence[Row]) -> List[Group]:
    """Consecutive rows of one text (build_rows keeps them together) form a group. Each row
    keeps at least its last prompt id to itself, whose output predicts its first answer token."""
    out: List[Group] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end < len(rows) and rows[end].text is rows[start].text:
            continue
        members = list(rows[start:end])
        shared = min(common_prefix_length([r.prompt for r in members]),
                     min(len(r.prompt) for r in members) - 1)
        if shared >= 1:
            out.append(Group(members, shared))
        else:  # nothing in common: each row reads its own prompt
            out.extend(Group([r], len(r.prompt) - 1) for r in members)
        start = end
    return out


def cost(gs: Sequence[Group]) -> int:
    """Padded positions of one pass over these groups."""
    if not gs:
        return 0
    width = max(g.shared for g in gs)
    rows = [(g, r) for g in gs for r in g.rows]
    return len(gs) * width + len(rows) * max(len(g.suffix(r)) for g, r in rows)


def plan(rows: Sequence[Row], max_tokens: int) -> List[List[Group]]:
    """Split the rows into passes of at most `max_tokens` padded positions, in order. A
    sentence whose rows alone exceed it is split into smaller groups (each re-reads the text);
    a single row longer than the budget gets a pass of its own."""
    passes: List[List[Group]] = []
    current: List[Group] = []
    for group in groups(rows):
        pieces = [group]
        if cost([group]) > max_tokens and len(group.rows) > 1:
            pieces, part = [], []
            for row in group.rows:
                if part and cost([Group(part + [row], group.shared)]) > max_tokens:
                    pieces.append(Group(part, group.shared))
                    part = []
                part.append(row)
            pieces.append(Group(part, group.shared))
        for piece in pieces:
            if current and cost(current + [piece]) > max_tokens:
                passes.append(current)
                current = []
            current.append(piece)
    if current:
        passes.append(current)
    return passes


@dataclass
class Forward:
    """What the loss needs from one pass."""

    rows: List[Row]
    logits: torch.Tensor  # (targets, vocab): each response token's prediction, row by row
    targets: torch.Tensor  # (targets,)
    first: torch.Tensor  # (rows,): the index in `logits` of each row's first answer token
    # (rows, width, dim): the hooked layer's states in each row's own prompt positions
    hidden: Optional[torch.Tensor]


def run(lm, gs: Sequence[Group], pad_id: int, layer: Optional[int]) -> Forward:
    """One pass of a peft causal LM over groups; `layer` (1-based) is the layer whose states
    the contrastive term reads (None: not needed)."""
    base = lm.get_base_model()
    device = lm.device
    captured: List[torch.Tensor] = []
    hook = None
    if layer is not None:
        hook = base.model.layers[layer - 1].register_forward_hook(
            lambda module, args, out: captured.append(out[0] if isinstance(out, tuple) else out)
        )
    try:
        # 1. Each group's shared ids, right-padded, once.
        width = max(g.shared for g in gs)
        ctx_ids = torch.full((len(gs), width), pad_id, dtype=torch.long)
        ctx_mask = torch.zeros((len(gs), width), dtype=torch.long)
        for i, g in enumerate(gs):
            ctx_ids[i, : g.shared] = torch.tensor(g.context)
            ctx_mask[i, : g.shared] = 1
        ctx_ids, ctx_mask = ctx_ids.to(device), ctx_mask.to(device)
        cache = DynamicCache()
        base.model(input_ids=ctx_ids, attention_mask=ctx_mask, cache=cache, use_cache=True)
        # 2. Every row's own ids on top of its group's cache, right-padded. The padding of
        # the shared part is masked; positions continue from each group's own length.
        members = [(i, g, r) for i, g in enumerate(gs) for r in g.rows]
        suffixes = [g.suffix(r) for _, g, r in members]
        span = max(len(s) for s in suffixes)
        ids = torch.full((len(members), span), pad_id, dtype=torch.long)
        mask = torch.zeros((len(members), span), dtype=torch.long)
        positions = torch.zeros((len(members), span), dtype=torch.long)
        for j, ((_, g, _), suffix) in enumerate(zip(members, suffixes)):
            ids[j, : len(suffix)] = torch.tensor(suffix)
            mask[j, : len(suffix)] = 1
            positions[j] = torch.arange(g.shared, g.shared + span)
        which = torch.tensor([i for i, _, _ in members], device=device)
        # DynamicCache copies what it is given: one layer at a time, so no copy is held twice.
        expanded = DynamicCache(ddp_cache_data=(
            (layer_.keys.index_select(0, which), layer_.values.index_select(0, which))
            for layer_ in cache.layers
        ))
        full_mask = torch.cat([ctx_mask.index_select(0, which), mask.to(device)], dim=1)
        out = base.model(input_ids=ids.to(device), attention_mask=full_mask,
                         position_ids=positions.to(device), cache=expanded, use_cache=True)
    finally:
        if hook is not None:
            hook.remove()
    # Suffix position p predicts suffix token p + 1; the answer starts after the prompt.
    select = torch.zeros((len(members), span), dtype=torch.bool)
    targets, first = [], []
    for j, (_, g, r) in enumerate(members):
        start = len(r.prompt) - g.shared - 1
        select[j, start : start + len(r.response)] = True
        first.append(len(targets))
        targets.extend(r.response)
    logits = base.lm_head(out.last_hidden_state[select.to(device)])
    hidden = None
    if layer is not None:
        ctx_hidden, own_hidden = captured[0], captured[1]
        hidden = torch.nn.utils.rnn.pad_sequence(
            [torch.cat([ctx_hidden[i, : g.shared], own_hidden[j, : len(suffixes[j])]])
             for j, (i, g, _) in enumerate(members)],
            batch_first=True,
        )
    return Forward(
        rows=[r for _, _, r in members],
        logits=logits,
        targets=torch.tensor(targets, device=device),
        first=torch.tensor(first, device=device),
        hidden=hidden,
    )
