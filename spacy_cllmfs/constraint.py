"""Constrained decoding: every generated entity is a span of the input, by construction.

For each document, every span of at most `max_span_tokens` spaCy tokens (not starting or ending
on whitespace) is tokenized as the response writes it, followed by the closing delimiter, and
those ids go into a trie. The openings a row may write go into a second, small trie: one
opening for a row that asks about one type, one per type (its name in it) for the joint
question of a joint template, whose leaves say which type the entity is. While the model
generates, a transformers `LogitsProcessor` follows each sequence through a small state machine
(outside an entity, in an opening, in the span trie) and masks every token that would leave
it. Putting the closing delimiter in the trie keeps the grammar unambiguous for tokenizers
whose delimiter shares tokens with the text. The end of the response is always allowed, and
`max_new_tokens` bounds every generation; an entity cut off by either is not written. The
processor records which trie leaf each entity reached, so the output is never parsed as text.

Repeated mentions: the k-th time a sequence generates a given string, it is the k-th occurrence
of that string in the document, left to right; a string can close at most as many times as the
document holds it.
"""
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from transformers import LogitsProcessor

from .prompts import Prompter

_END = -1  # trie key under which a node stores the ids of the span that ends there
_LABEL = -2  # opening-trie key under which a leaf stores the type its opening writes

SpanIds = Tuple[int, ...]


class Entity(NamedTuple):
    """One predicted entity: what every decoder returns and the component writes."""

    label: str
    start: int  # spaCy token offsets in the document (or window) that was read
    end: int
    # the probability that the model writes this entity: of opening an entity rather than
    # ending the answer at that point (its first token against all allowed choices) times the
    # geometric mean probability of the entity's tokens and closing delimiter, under the
    # unconstrained distribution
    score: float


@dataclass
class SpanIndex:
    """The spans of one document that the decoder may produce."""

    trie: dict
    # token ids -> the (start, end) spaCy token offsets of that string, left to right
    occurrences: Dict[SpanIds, List[Tuple[int, int]]]
    # the trie as index arrays (tensor_constraint.flat_spans), built when first needed
    flat: Optional[object] = field(default=None, repr=False, compare=False)


def build_span_index(doc, prompter: Prompter, max_span_tokens: int) -> SpanIndex:
    return build_span_indexes([doc], prompter, max_span_tokens)[0]


def build_span_indexes(docs, prompter: Prompter, max_span_tokens: int) -> List[SpanIndex]:
    """The SpanIndex of each doc. The span strings of all the docs are tokenized in one call
    (each distinct string once): a fast tokenizer's batch call costs about three times as much
    per string on one document's spans as on many documents' together."""
    bounds = [_span_bounds(doc, max_span_tokens) for doc in docs]
    texts = list(dict.fromkeys(text for doc_bounds in bounds for text in doc_bounds))
    encoded = dict(zip(texts, prompter.encode_spans(texts)))
    close = prompter.close_ids
    indexes = []
    for doc_bounds in bounds:
        occurrences: Dict[SpanIds, List[Tuple[int, int]]] = {}
        trie: dict = {}
        for text, spans in doc_bounds.items():
            ids = encoded[text]
            # A span that holds the end token, or the whole closing delimiter, would end the
            # entity early or make the response ambiguous: such spans cannot be extracted.
            if not ids or prompter.eos_id in ids or _contains(ids, close):
                continue
            occurrences.setdefault(ids, []).extend(spans)
            node = trie
            for token in ids + close:
                node = node.setdefault(token, {})
            node[_END] = ids
        for spans in occurrences.values():
            spans.sort()
        indexes.append(SpanIndex(trie, occurrences))
    return indexes


def _span_bounds(doc, max_span_tokens: int) -> Dict[str, List[Tuple[int, int]]]:
    """Each span string of `doc` (at most max_span_tokens tokens, not starting or ending on
    whitespace) -> its (start, end) token offsets, left to right."""
    bounds: Dict[str, List[Tuple[int, int]]] = {}
    n = len(doc)
    for start in range(n):
        if doc[start].is_space:
            continue
        for end in range(start + 1, min(n, start + max_span_tokens) + 1):
            if doc[end - 1].is_space:
                continue
            bounds.setdefault(doc[start:end].text, []).append((start, end))
    return bounds


def _contains(ids: SpanIds, part: SpanIds) -> bool:
    n = len(part)
    return any(ids[i : i + n] == part for i in range(len(ids) - n + 1))


def opening_trie(openings: Dict[str, SpanIds]) -> dict:
    """A trie of the label -> opening ids a row may write; each leaf stores its label."""
    trie: dict = {}
    for label, ids in openings.items():
        node = trie
        for token in ids:
            if _LABEL in node:
                raise ValueError(f"The opening of type {node[_LABEL]!r} begins the opening of "
                                 f"{label!r}: the answer could not tell them apart.")
            node = node.setdefault(token, {})
        if len(node) > 0:
            other = node.get(_LABEL) or "another type"
            raise ValueError(f"The opening of type {label!r} is that of {other!r} or begins "
                             f"it: the answer could not tell them apart.")
        node[_LABEL] = label
    return trie


def open_bias(indexes: Sequence[SpanIndex], keys: Sequence[str],
              answer_threshold: float) -> float:
    """What a constraint adds to the opening tokens' scores, so that a row opens an entity iff
    p(open) / (p(open) + p(end)) >= answer_threshold; checks a constraint's arguments."""
    if len(indexes) != len(keys):
        raise ValueError(f"{len(indexes)} span indexes for {len(keys)} row keys.")
    if not 0.0 < answer_threshold < 1.0:
        raise ValueError(f"answer_threshold must be between 0 and 1, got {answer_threshold!r}.")
    return math.log((1.0 - answer_threshold) / answer_threshold)


_OUT, _OPEN, _SPAN, _DONE = range(4)


@dataclass
class _Sequence:
    """Where one generated sequence stands in the response grammar."""

    index: SpanIndex
    opens: dict  # the row's opening trie
    mode: int = _OUT
    node: Optional[dict] = None  # in the opening trie (_OPEN) or the span trie (_SPAN)
    label: str = ""  # the type of the entity being written
    logprobs: List[float] = field(default_factory=list)
    decision: float = 0.0  # log-probability of opening the current entity rather than ending
    used: Counter = field(default_factory=Counter)
    # (span ids, occurrence number, log-score, label) of each closed entity
    found: List[Tuple[SpanIds, int, float, str]] = field(default_factory=list)


class SpanConstraint(LogitsProcessor):
    """Masks the logits so that each row generates `( open span close )* eos`.

    indexes, keys: the SpanIndex and the row key of each batch row: an entity type, or the
    joint question (prompts.ALL_TYPES), whose openings name the type. Also records each
    entity's score (Entity.score): the decision to open it, and the mean log-probability under
    the model's unconstrained distribution of its tokens and closing delimiter.

    answer_threshold: where a row chooses between opening an entity and ending its answer, it
    opens one when the model's probability of opening, against ending, is at least this (0.5:
    the likelier, plain greedy decoding; lower: more entities, higher recall). The recorded
    scores stay the model's own probabilities.
    """

    def __init__(self, indexes: Sequence[SpanIndex], keys: Sequence[str], prompter: Prompter,
                 answer_threshold: float = 0.5):
        self._open_bias = open_bias(indexes, keys, answer_threshold)
        tries = {key: opening_trie(prompter.openings(key)) for key in dict.fromkeys(keys)}
        self.seqs = [_Sequence(index, tries[key]) for index, key in zip(indexes, keys)]
        self.eos_id = prompter.eos_id
        self._logp: Optional[torch.Tensor] = None
        self._rows: List[int] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._logp is not None:
            self._consume(input_ids[:, -1])
        return self.masked(range(len(self.seqs)), scores)

    def masked(self, rows: Sequence[int], scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask the next-token scores of `rows` (one line of `scores` each). The token then
        chosen for each of those rows goes to `consume` (or the next `__call__`)."""
        self._rows = list(rows)
        self._logp = torch.log_softmax(scores.float(), dim=-1)
        index_rows: List[int] = []
        index_cols: List[int] = []
        bias_rows: List[int] = []
        bias_cols: List[int] = []
        for i, row in enumerate(self._rows):
            seq = self.seqs[row]
            allowed = self._allowed(seq)
            index_rows.extend([i] * len(allowed))
            index_cols.extend(allowed)
            if self._open_bias and seq.mode == _OUT and seq.index.trie:
                bias_rows.extend([i] * len(seq.opens))
                bias_cols.extend(seq.opens)
        mask = torch.full_like(scores, float("-inf"))
        device = scores.device
        mask[torch.tensor(index_rows, device=device), torch.tensor(index_cols, device=device)] = 0
        if bias_rows:
            mask[torch.tensor(bias_rows, device=device),
                 torch.tensor(bias_cols, device=device)] = self._open_bias
        return scores + mask

    def consume(self, tokens: torch.Tensor) -> None:
        """Advance the rows last masked with the tokens chosen for them."""
        self._consume(tokens)
        self._logp = None

    def done(self, row: int) -> bool:
        return self.seqs[row].mode == _DONE

    def finish(self, sequences: torch.LongTensor) -> None:
        """Account for the last generated token, which no further call of the processor sees."""
        if self._logp is not None and sequences.shape[1] > 0:
            self._consume(sequences[:, -1])
            self._logp = None

    def _allowed(self, seq: _Sequence) -> List[int]:
        if seq.mode == _OUT:
            return [*seq.opens, self.eos_id] if seq.index.trie else [self.eos_id]
        if seq.mode == _OPEN:
            return [*seq.node, self.eos_id]
        if seq.mode == _DONE:
            return [self.eos_id]
        allowed = []
        for token, child in seq.node.items():
            ids = child.get(_END)
            # The last token of the closing delimiter leads to a leaf: allow it only while
            # the document holds another unused occurrence of the string.
            if ids is None or seq.used[ids] < len(seq.index.occurrences[ids]):
                allowed.append(token)
        allowed.append(self.eos_id)
        return allowed

    def _consume(self, tokens: torch.Tensor) -> None:
        logps = self._logp.gather(1, tokens[:, None].to(self._logp.device))[:, 0].tolist()
        for i, (row, token, logp) in enumerate(zip(self._rows, tokens.tolist(), logps)):
            seq = self.seqs[row]
            choices = None
            if seq.mode == _OUT and token != self.eos_id:  # the decision to open an entity
                allowed = torch.tensor(self._allowed(seq), device=self._logp.device)
                choices = float(torch.logsumexp(self._logp[i, allowed], dim=0))
            self._advance(seq, token, logp, choices)

    def _advance(self, seq: _Sequence, token: int, logp: float,
                 choices: Optional[float]) -> None:
        if seq.mode == _DONE:
            return
        if token == self.eos_id or token not in self._allowed(seq):
            # An entity still open here is incomplete: it is not written.
            seq.mode = _DONE
            return
        if seq.mode == _OUT:  # opening an entity, against ending the answer
            seq.decision = logp - choices
            seq.mode, seq.node = _OPEN, seq.opens
        if seq.mode == _OPEN:
            seq.node = seq.node[token]
            label = seq.node.get(_LABEL)
            if label is not None:
                seq.mode, seq.label, seq.node, seq.logprobs = _SPAN, label, seq.index.trie, []
            return
        seq.node = seq.node[token]
        seq.logprobs.append(logp)
        ids = seq.node.get(_END)
        if ids is not None:
            mean = sum(seq.logprobs) / len(seq.logprobs)
            seq.found.append((ids, seq.used[ids], seq.decision + mean, seq.label))
            seq.used[ids] += 1
            seq.mode = _OUT

    def entities(self, row: int) -> List[Entity]:
        """The entities that row generated, in the order it wrote them."""
        seq = self.seqs[row]
        return [
            Entity(label, *seq.index.occurrences[ids][k], _probability(logp))
            for ids, k, logp, label in seq.found
        ]


def _probability(logp: float) -> float:
    # In float32, the precision of the log-probabilities it comes from.
    return float(torch.tensor(logp).exp())
