"""Running the LM for generation, shared by both decoders and the spacy-llm bridge: the key/value
cache of a shared prefix (computed once, copied into each batch), left padding, one cached
forward step and greedy generation settings.

Every call uses transformers' `cache=` argument (its name since 5.24; `past_key_values` is
deprecated there and removed in 5.40).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from transformers import DynamicCache, GenerationConfig


def common_prefix_length(seqs: Sequence[Sequence[int]], limit: Optional[int] = None) -> int:
    """How many leading ids every sequence shares (at most `limit`): the part of their prompts
    that the decoders, the training passes and the bridge read once."""
    if not seqs:
        return 0
    n = min(len(s) for s in seqs)
    if limit is not None:
        n = min(n, limit)
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs):
            return i
    return max(n, 0)


class PrefixCache:
    """The key/value cache of one token prefix. Forget it whenever the weights change."""

    def __init__(self):
        self.ids: Tuple[int, ...] = ()
        self._layers: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None

    def forget(self) -> None:
        self.ids, self._layers = (), None

    @property
    def ready(self) -> bool:
        return self._layers is not None

    def compute(self, lm, ids: Sequence[int]) -> None:
        """Encode `ids` once; later batches copy the result."""
        ids = tuple(ids)
        if self._layers is not None and ids == self.ids:
            return
        cache = DynamicCache()
        tensor = torch.tensor([ids], device=lm.device)
        forward(lm, tensor, torch.ones_like(tensor), None, cache)
        self.ids, self._layers = ids, [(layer.keys, layer.values) for layer in cache.layers]

    def expand(self, batch_size: int) -> DynamicCache:
        """A fresh cache that holds the prefix once per row of a batch."""
        if self._layers is None:
            raise RuntimeError("PrefixCache.expand before compute.")
        # DynamicCache copies each layer it is given (into contiguous memory): hand it the
        # expanded views one layer at a time, so the rows are materialised once.
        return DynamicCache(
            ddp_cache_data=(
                (k.expand(batch_size, -1, -1, -1), v.expand(batch_size, -1, -1, -1))
                for k, v in self._layers
            )
        )


def forward(lm, ids, mask, positions, cache) -> torch.Tensor:
    """One cached forward pass; the logits of the last position only."""
    output = lm(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return output.logits[:, -1]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask, padded on the left so every row's next token is aligned."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def greedy_config(max_new_tokens: int, eos_id: int, pad_id: int, **extra) -> GenerationConfig:
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        **extra,
    )
