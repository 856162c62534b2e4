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
from typing import List, Sequence

import torch

from .constraint import Entity, SpanConstraint, SpanIndex
from .generation import PrefixCache, forward, left_pad
from .prompts import EncodedText, Prompter


class CachedDecoder:
    def __init__(self, lm, prompter: Prompter, settings):
        self.lm = lm
        self.prompter = prompter
        self.settings = settings  # decoders.DecoderSettings
        self.prefix = PrefixCache()

    def forget_prefix(self) -> None:
        """Drop the cached prefix; call it whenever the weights change."""
        self.prefix.forget()

    def decode(
        self, texts: Sequence[EncodedText], indexes: Sequence[SpanIndex], labels: Sequence[str]
    ) -> List[List[Entity]]:
        """The entities of every type in every document."""
        found: List[List[Entity]] = []
        # batch_size counts (text, type) rows, as in the plain decoder.
        per_batch = max(1, self.settings.batch_size // max(1, len(labels)))
        for start in range(0, len(texts), per_batch):
            end = start + per_batch
            found.extend(self._decode_batch(texts[start:end], indexes[start:end], labels))
        return found

    @torch.inference_mode()
    def _decode_batch(self, texts, indexes, labels) -> List[List[Entity]]:
        found: List[List[Entity]] = [[] for _ in texts]
        # A document with no extractable span can only answer "nothing": skip its rows.
        docs = [i for i, index in enumerate(indexes) if index.trie]
        if not docs or not labels:
            return found
        cache, mask, text_len = self._read_texts([texts[i] for i in docs])
        logits, mask, next_pos = self._read_questions(cache, mask, text_len, labels)
        rows = [(doc, label) for doc in docs for label in labels]  # row = doc * n_types + type
        constraint = SpanConstraint(
            [indexes[doc] for doc, _ in rows], [label for _, label in rows], self.prompter
        )
        self._generate(constraint, cache, logits, mask, next_pos)
        for row, (doc, _) in enumerate(rows):
            found[doc].extend(constraint.entities(row))
        return found

    def _read_texts(self, texts: Sequence[EncodedText]):
        """The prefix (cached) and each text, once per document."""
        device = self.lm.device
        prefix_len = len(self.prompter.prefix_ids)
        text_ids, text_mask = left_pad([t.ids for t in texts], self.prompter.pad_id, device)
        self.prefix.compute(self.lm, self.prompter.prefix_ids)
        cache = self.prefix.expand(len(texts))
        mask = torch.cat([text_mask.new_ones(len(texts), prefix_len), text_mask], dim=1)
        positions = prefix_len + (text_mask.cumsum(1) - 1).clamp(min=0)
        forward(self.lm, text_ids, mask, positions, cache)
        return cache, mask, text_mask.sum(1)

    def _read_questions(self, cache, mask, text_len, labels: Sequence[str]):
        """Every type's question after every text: one row per (document, type)."""
        n_docs, n_types = mask.shape[0], len(labels)
        prefix_len = len(self.prompter.prefix_ids)
        cache.batch_repeat_interleave(n_types)
        questions = [self.prompter.questions[label].ids for label in labels]
        q_ids, q_mask = left_pad(questions, self.prompter.pad_id, self.lm.device)
        q_ids, q_mask = q_ids.repeat(n_docs, 1), q_mask.repeat(n_docs, 1)
        text_len = text_len.repeat_interleave(n_types)
        mask = torch.cat([mask.repeat_interleave(n_types, dim=0), q_mask], dim=1)
        positions = prefix_len + text_len[:, None] + (q_mask.cumsum(1) - 1).clamp(min=0)
        logits = forward(self.lm, q_ids, mask, positions, cache)
        return logits, mask, prefix_len + text_len + q_mask.sum(1)

    def _generate(self, constraint: SpanConstraint, cache, logits, mask, next_pos) -> None:
        """Greedy steps under the constraint; finished rows leave the batch."""
        max_new_tokens = self.settings.max_new_tokens
        active = list(range(len(constraint.seqs)))
        for step in range(max_new_tokens):
            tokens = constraint.masked(active, logits).argmax(dim=-1)
            constraint.consume(tokens)
            keep = [k for k, row in enumerate(active) if not constraint.done(row)]
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(active):
                select = torch.tensor(keep, device=logits.device)
                cache.batch_select_indices(select)
                mask, next_pos, tokens = mask[select], next_pos[select], tokens[select]
                active = [active[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            logits = forward(self.lm, tokens[:, None], mask, next_pos[:, None], cache)
            next_pos = next_pos + 1
