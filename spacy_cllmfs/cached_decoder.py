"""Constrained decoding that computes each shared part of the prompts once.

A prompt is prefix + text + question(type) (the templates put the text before the type):
- the prefix's key/value cache is computed once per loaded adapter and copied into each batch;
- each document's text is encoded once, and its cache serves the question of every type (one
  question per document for a joint template, whose answer names the types);
- the ids that every type's question begins with (ner.v1: "\n\n### Type:") are read once per
  document, right after its text, and only the rest of each question once per type;
- each type's question is read after every text in one pass per type (no question padding);
  a single question (a joint template's, or one type's) is read in the text pass itself, so
  its rows are the documents' own caches, with no copy;
- all (document, type) rows then decode together, greedily under the span constraint held as
  index arrays on the model's device (tensor_constraint.py: SpanConstraint's grammar, a fixed
  number of tensor operations a step and one small transfer to the host), and rows that finish
  leave the batch, so late steps run only on the rows still writing;
- every forward pass asks for the logits of the last position only;
- documents are decoded in order of length, so the texts of a batch pad little, and a batch
  holds as many documents as its key/value cache allows (`rows_per_batch`), then the results
  go back to the documents' order.
Pads sit between the parts (left of each text, left of each question), masked out, with
explicit position ids, so every real token has the position it has in the unpadded prompt:
the model computes what plain `generate` computes on the full prompt, up to float rounding.
"""
from dataclasses import dataclass, fields
from typing import Iterator, List, Sequence

import torch
from transformers import DynamicCache

from .constraint import Entity, SpanIndex
from .generation import PrefixCache, common_prefix_length, forward, left_pad
from .prompts import EncodedText, Prompter
from .tensor_constraint import TensorConstraint


@dataclass
class DecodeStats:
    """Token positions the model read while decoding, by part (cumulative; `reset` clears).

    documents: documents that got rows (a document with no extractable span gets none);
    text, questions: real positions of the text pass and the question passes; answers: answer
    tokens fed back during generation; padding: padded positions in the text pass (question
    passes and generation steps read real tokens only); answer_tokens: tokens chosen,
    the closing end token included (so a row that answers "none" counts 1).
    """

    documents: int = 0
    rows: int = 0
    batches: int = 0
    text: int = 0
    questions: int = 0
    answers: int = 0
    padding: int = 0
    answer_tokens: int = 0
    cut_off: int = 0

    def reset(self) -> None:
        for field in fields(self):
            setattr(self, field.name, 0)


def cache_bytes_per_position(lm) -> int:
    """Bytes of key/value cache that one token position takes in every layer of `lm`."""
    config = lm.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    width = torch.empty((), dtype=lm.dtype).element_size()
    return 2 * config.num_hidden_layers * heads * head_dim * width


def rows_per_batch(cache_mb: float, row_positions: int, bytes_per_position: int, cap: int) -> int:
    """Rows whose key/value caches, `row_positions` long each, fit in `cache_mb` MiB (at most
    `cap`, at least 1). `cache_mb` 0 means no memory bound: `cap` rows."""
    if cache_mb <= 0:
        return cap
    fit = int(cache_mb * 2**20 // (row_positions * bytes_per_position))
    return max(1, min(cap, fit))


def shared_head(questions: Sequence[Sequence[int]]) -> int:
    """How many ids every question begins with, short of any question's last id (whose logits
    start that row's answer): the decoder reads them once per document instead of once per
    type. One question alone shares nothing."""
    if len(questions) < 2:
        return 0
    return common_prefix_length(questions, min(len(q) for q in questions) - 1)


def _taken(keys: List[torch.Tensor], values: List[torch.Tensor], rows: int):
    """Each layer's (keys, values) as `rows` rows, handed over one layer at a time: DynamicCache
    copies what it is given, so a layer's buffers are dropped from the lists before the next
    one is built, and the cache is never held twice."""
    while keys:
        k, v = keys.pop(0), values.pop(0)
        yield k.reshape(rows, *k.shape[2:]), v.reshape(rows, *v.shape[2:])


class CachedDecoder:
    def __init__(self, lm, prompter: Prompter, settings):
        self.lm = lm
        self.prompter = prompter
        self.settings = settings  # decoders.DecoderSettings
        self.prefix = PrefixCache()
        self.stats = DecodeStats()

    def forget_prefix(self) -> None:
        """Drop the cached prefix; call it whenever the weights change."""
        self.prefix.forget()

    def decode(
        self, texts: Sequence[EncodedText], indexes: Sequence[SpanIndex], labels: Sequence[str]
    ) -> List[List[Entity]]:
        """The entities of every type in every document, in the documents' order."""
        found: List[List[Entity]] = [[] for _ in texts]
        keys = self.prompter.keys(labels)  # one row per key and document
        for batch in self._batches(texts, len(keys)):
            entities = self._decode_batch(
                [texts[i] for i in batch], [indexes[i] for i in batch], keys
            )
            for i, doc_entities in zip(batch, entities):
                found[i] = doc_entities
        return found

    def _batches(self, texts: Sequence[EncodedText], n_types: int) -> Iterator[List[int]]:
        """Document indices, shortest text first, cut into batches whose rows (document x
        type) fit both `batch_size` and, row length counted as prefix + text + longest question
        + max_new_tokens, the `cache_mb` key/value budget. A batch holds at least one document."""
        settings, n_types = self.settings, max(1, n_types)
        fixed = (len(self.prompter.prefix_ids) + settings.max_new_tokens
                 + max((len(q.ids) for q in self.prompter.questions.values()), default=0))
        per_position = cache_bytes_per_position(self.lm)
        batch: List[int] = []
        for i in sorted(range(len(texts)), key=lambda i: len(texts[i].ids)):
            width = fixed + len(texts[i].ids)  # the longest text so far: the order is by length
            cap = rows_per_batch(settings.cache_mb, width, per_position, settings.batch_size)
            if batch and (len(batch) + 1) * n_types > cap:
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    @torch.inference_mode()
    def _decode_batch(self, texts, indexes, keys) -> List[List[Entity]]:
        found: List[List[Entity]] = [[] for _ in texts]
        # A document with no extractable span can only answer "nothing": skip its rows.
        docs = [i for i, index in enumerate(indexes) if index.trie]
        if not docs or not keys:
            return found
        questions = [self.prompter.questions[key].ids for key in keys]
        if len(questions) == 1:
            # One question (a joint template, or one type): read it with the texts, in the
            # same pass, whose last logits start the answers; no question pass, no copies.
            (question,) = questions
            cache, mask, read, logits = self._read_texts([texts[i] for i in docs], question)
            next_pos = len(self.prompter.prefix_ids) + read
        else:
            head = shared_head(questions)
            cache, mask, read, _ = self._read_texts([texts[i] for i in docs],
                                                    questions[0][:head])
            logits, mask, next_pos, cache = self._read_questions(
                cache, mask, read, [q[head:] for q in questions]
            )
        rows = [(doc, key) for doc in docs for key in keys]  # row = doc * n_keys + key
        self.stats.documents += len(docs)
        self.stats.rows += len(rows)
        self.stats.batches += 1
        constraint = TensorConstraint(
            [indexes[doc] for doc, _ in rows], [label for _, label in rows], self.prompter,
            self.settings.answer_threshold, device=logits.device,
        )
        self._generate(constraint, cache, logits, mask, next_pos)
        for (doc, _), entities in zip(rows, constraint.entities()):
            found[doc].extend(entities)
        return found

    def _read_texts(self, texts: Sequence[EncodedText], head: Sequence[int] = ()):
        """The prefix (cached) and each text followed by `head` (the questions' shared
        beginning, or the one question), once per document: (cache, mask, the real positions
        read per document after the prefix, the logits of each document's last position)."""
        device = self.lm.device
        prefix_len = len(self.prompter.prefix_ids)
        head = tuple(head)
        text_ids, text_mask = left_pad([t.ids + head for t in texts], self.prompter.pad_id,
                                       device)
        self.prefix.compute(self.lm, self.prompter.prefix_ids)
        cache = self.prefix.expand(len(texts))
        mask = torch.cat([text_mask.new_ones(len(texts), prefix_len), text_mask], dim=1)
        positions = prefix_len + (text_mask.cumsum(1) - 1).clamp(min=0)
        logits = forward(self.lm, text_ids, mask, positions, cache)
        real = int(text_mask.sum())
        self.stats.text += real - len(texts) * len(head)
        self.stats.questions += len(texts) * len(head)
        self.stats.padding += text_mask.numel() - real
        return cache, mask, text_mask.sum(1), logits

    def _read_questions(self, cache, mask, text_len, questions: Sequence[Sequence[int]]):
        """Every type's question (its ids after the shared head) after every text: one row per
        (document, type), in the order of `questions`. text_len: the positions each document
        has read after the prefix (its text and the shared head).

        Each type's question is read in its own pass over the documents, so no question is
        padded to the longest; the passes' caches are then laid side by side, each question
        right-aligned, the gap before a short one zero and masked out (as left padding is).
        """
        n_docs, n_types = mask.shape[0], len(questions)
        prefix_len, read = len(self.prompter.prefix_ids), mask.shape[1]
        device = self.lm.device
        width = max(len(q) for q in questions)
        shared = [(layer.keys, layer.values) for layer in cache.layers]
        keys = [k.new_zeros(n_docs, n_types, *k.shape[1:-2], read + width, k.shape[-1])
                for k, _ in shared]
        values = [torch.zeros_like(k) for k in keys]
        for (k_text, v_text), k, v in zip(shared, keys, values):  # every type's copy of the texts
            k[:, :, ..., :read, :] = k_text[:, None]
            v[:, :, ..., :read, :] = v_text[:, None]
        q_mask = mask.new_zeros(n_docs, n_types, width)
        logits = []
        for t, question in enumerate(questions):
            length = len(question)
            ids = torch.tensor([question], device=device).expand(n_docs, -1)
            own = DynamicCache(ddp_cache_data=shared)  # appends into new tensors: shared stays
            full = torch.cat([mask, mask.new_ones(n_docs, length)], dim=1)
            positions = (prefix_len + text_len)[:, None] + torch.arange(length, device=device)
            logits.append(forward(self.lm, ids, full, positions, own))
            for layer, k, v in zip(own.layers, keys, values):  # its question, right-aligned
                k[:, t, ..., read + width - length :, :] = layer.keys[..., read:, :]
                v[:, t, ..., read + width - length :, :] = layer.values[..., read:, :]
            q_mask[:, t, width - length :] = 1
            self.stats.questions += n_docs * length
        rows = n_docs * n_types
        cache.layers.clear()
        del shared, own, layer
        merged = DynamicCache(ddp_cache_data=_taken(keys, values, rows))
        mask = torch.cat([mask.repeat_interleave(n_types, dim=0), q_mask.reshape(rows, width)], 1)
        q_len = torch.tensor([len(q) for q in questions], device=device).repeat(n_docs)
        next_pos = prefix_len + text_len.repeat_interleave(n_types) + q_len
        return torch.stack(logits, dim=1).reshape(rows, -1), mask, next_pos, merged

    def _generate(self, constraint: TensorConstraint, cache, logits, mask, next_pos) -> None:
        """Greedy steps under the constraint; finished rows leave the batch. Each step moves
        one small tensor to the host: which rows ended, and the edge count the next step needs."""
        max_new_tokens = self.settings.max_new_tokens
        active = torch.arange(logits.shape[0], device=logits.device)
        after = constraint.edges(active).tolist()
        for step in range(max_new_tokens):
            n_edges = sum(after)
            tokens, after = constraint.step(active, logits, n_edges)
            self.stats.answer_tokens += len(after)
            after = after.tolist()
            keep = [k for k, edges in enumerate(after) if edges >= 0]
            if not keep or step == max_new_tokens - 1:
                self.stats.cut_off += len(keep)
                break
            if len(keep) < len(after):
                after = [after[k] for k in keep]
                select = torch.tensor(keep, device=logits.device)
                cache.batch_select_indices(select)
                mask, next_pos, tokens = mask[select], next_pos[select], tokens[select]
                active = active[select]
            mask = torch.cat([mask, mask.new_ones(len(keep), 1)], dim=1)
            logits = forward(self.lm, tokens[:, None], mask, next_pos[:, None], cache)
            self.stats.answers += len(keep)
            next_pos = next_pos + 1
