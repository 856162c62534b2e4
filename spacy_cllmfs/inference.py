"""Constrained decoding that computes each shared part of the prompts once.

A prompt is prefix + text + question(type) (the templates put the text before the type):
- the prefix's key/value cache is computed once per loaded adapter and copied into each batch;
- each document's text is encoded once, and its cache serves the question of every type;
- all (document, type) rows then decode together, greedily under the SpanConstraint, and rows
  that finish leave the batch, so late steps run only on the rows still writing;
- every forward pass asks for the logits of the last position only.
Pads sit between the parts (left of each text, left of each question), masked out, with
explicit position ids, so every real token has the position it has in the unpadded prompt:
the model computes what plain `generate` computes on the full prompt, up to float rounding.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from transformers import DynamicCache

from .decoding import SpanConstraint, SpanIndex
from .prompts import EncodedText, Prompter

# (label, start token, end token, mean log-probability) of each entity of one document
Found = List[Tuple[str, int, int, float]]


class CachedDecoder:
    def __init__(self, lm, prompter: Prompter, max_new_tokens: int):
        self.lm = lm
        self.prompter = prompter
        self.max_new_tokens = max_new_tokens
        self._prefix: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None

    def forget_prefix(self) -> None:
        """Drop the cached prefix; call it whenever the weights change."""
        self._prefix = None

    @torch.inference_mode()
    def decode(
        self,
        texts: Sequence[EncodedText],
        indexes: Sequence[SpanIndex],
        labels: Sequence[str],
    ) -> List[Found]:
        """The entities of every type in every document."""
        found: List[Found] = [[] for _ in texts]
        # A document with no extractable span can only answer "nothing": skip its rows.
        docs = [i for i, index in enumerate(indexes) if index.trie]
        if not docs or not labels:
            return found
        device = self.lm.device
        n_types = len(labels)
        prefix_len = len(self.prompter.prefix_ids)

        text_ids, text_mask = left_pad([texts[i].ids for i in docs], self.prompter.pad_id, device)
        cache = self._prefix_cache(len(docs))
        mask = torch.cat([text_mask.new_ones(len(docs), prefix_len), text_mask], dim=1)
        positions = prefix_len + (text_mask.cumsum(1) - 1).clamp(min=0)
        self._forward(text_ids, mask, positions, cache)

        # Rows are document-major: row = doc * n_types + type.
        cache.batch_repeat_interleave(n_types)
        questions = [self.prompter.questions[label].ids for label in labels]
        q_ids, q_mask = left_pad(questions, self.prompter.pad_id, device)
        q_ids, q_mask = q_ids.repeat(len(docs), 1), q_mask.repeat(len(docs), 1)
        text_len = text_mask.sum(1).repeat_interleave(n_types)
        mask = torch.cat([mask.repeat_interleave(n_types, dim=0), q_mask], dim=1)
        positions = prefix_len + text_len[:, None] + (q_mask.cumsum(1) - 1).clamp(min=0)
        logits = self._forward(q_ids, mask, positions, cache)
        next_pos = prefix_len + text_len + q_mask.sum(1)

        constraint = SpanConstraint([indexes[i] for i in docs for _ in labels], self.prompter)
        active = list(range(len(docs) * n_types))
        for step in range(self.max_new_tokens):
            tokens = constraint.masked(active, logits).argmax(dim=-1)
            constraint.consume(tokens)
            keep = [k for k, row in enumerate(active) if not constraint.done(row)]
            if not keep or step == self.max_new_tokens - 1:
                break
            if len(keep) < len(active):
                select = torch.tensor(keep, device=device)
                cache.batch_select_indices(select)
                mask, next_pos, tokens = mask[select], next_pos[select], tokens[select]
                active = [active[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            logits = self._forward(tokens[:, None], mask, next_pos[:, None], cache)
            next_pos = next_pos + 1

        for row in range(len(docs) * n_types):
            doc, label = docs[row // n_types], labels[row % n_types]
            found[doc].extend((label, s, e, logp) for s, e, logp in constraint.entities(row))
        return found

    def _prefix_cache(self, batch_size: int) -> DynamicCache:
        if self._prefix is None:
            ids = torch.tensor([self.prompter.prefix_ids], device=self.lm.device)
            cache = DynamicCache()
            self._forward(ids, torch.ones_like(ids), None, cache)
            self._prefix = [(layer.keys, layer.values) for layer in cache.layers]
        return DynamicCache(
            ddp_cache_data=[
                (k.expand(batch_size, -1, -1, -1).contiguous(),
                 v.expand(batch_size, -1, -1, -1).contiguous())
                for k, v in self._prefix
            ]
        )

    def _forward(self, ids, mask, positions, cache) -> torch.Tensor:
        output = self.lm(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
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
