"""The two decoders behind one interface, and the settings that choose between them.

Both decode every (text, entity type) row greedily under the SpanConstraint and return, per
text, a list of `Entity` (label, start, end, score):
- `CachedDecoder` (cached_decoder.py, the default) computes each shared part of the prompts
  once (the instruction prefix, each text) and decodes all rows of a batch together;
- `PlainDecoder` runs transformers' `generate` on full prompts. It is the reference the cached
  one is tested against, and the fallback for models whose cache layout the fast path does not
  handle.
"""
from dataclasses import dataclass
from typing import List, Protocol, Sequence

import torch
from spacy.util import minibatch, registry

from .cached_decoder import CachedDecoder
from .constraint import Entity, SpanConstraint, SpanIndex
from .generation import greedy_config, left_pad
from .prompts import EncodedText, Prompter


@dataclass(frozen=True)
class DecoderSettings:
    """How answers are generated. batch_size counts (text, type) rows, in both decoders.
    threshold: entities whose score (Entity.score, ent._.cllmfs_score) is below it are not
    written (0: every entity the model writes). cache_mb: the cached decoder puts in a batch
    only as many rows as have key/value caches within this many MiB, each counted at its
    longest (prefix + text + question + max_new_tokens); batch_size stays the upper bound
    (0: no memory bound, batch_size rows). merge_adapter: decode with the LoRA weights folded
    into the base weights (LanguageModel.merge: float32 only; the same function up to
    rounding, one matrix product per projection instead of three). answer_threshold: a row
    opens an entity where the model's probability of opening one, against ending the answer,
    is at least this (0.5: plain greedy; lower: more entities; SpanConstraint).
    window_tokens: the most model tokens of text one prompt reads (windows.py): a longer
    document is read in windows of whole sentences packed up to this length (or, without
    sentence boundaries, overlapping token windows), about the length of the sentences the
    adapters were trained on, so that each answer stays as short as in training; 0: windows
    only where the model's context ends."""

    max_new_tokens: int = 64
    max_span_tokens: int = 8
    batch_size: int = 96
    reuse_cache: bool = True
    threshold: float = 0.0
    cache_mb: float = 300.0
    merge_adapter: bool = True
    answer_threshold: float = 0.5
    window_tokens: int = 64

    def __post_init__(self):
        for key in ("max_new_tokens", "max_span_tokens", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"decoding.{key} must be an integer >= 1, got {value!r}.")
        if isinstance(self.window_tokens, bool) or not isinstance(self.window_tokens, int) \
                or (self.window_tokens != 0 and self.window_tokens < 4 * self.max_span_tokens):
            raise ValueError(
                f"decoding.window_tokens must be 0 (no limit but the model's context) or at "
                f"least 4 x max_span_tokens ({4 * self.max_span_tokens}), so that a window "
                f"holds every entity whole, got {self.window_tokens!r}."
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"decoding.threshold must be from 0 to 1, got {self.threshold!r}.")
        if isinstance(self.answer_threshold, bool) \
                or not isinstance(self.answer_threshold, (int, float)) \
                or not 0.0 < self.answer_threshold < 1.0:
            raise ValueError(f"decoding.answer_threshold must be between 0 and 1 (exclusive), "
                             f"got {self.answer_threshold!r}.")
        if not isinstance(self.merge_adapter, bool):
            raise ValueError(f"decoding.merge_adapter must be true or false, got "
                             f"{self.merge_adapter!r}.")
        if isinstance(self.cache_mb, bool) or not isinstance(self.cache_mb, (int, float)) \
                or not self.cache_mb >= 0:
            raise ValueError(f"decoding.cache_mb must be a number >= 0, got {self.cache_mb!r}.")

    def build(self, lm, prompter: Prompter) -> "Decoder":
        decoder = CachedDecoder if self.reuse_cache else PlainDecoder
        return decoder(lm, prompter, self)


# The defaults are written once, in DecoderSettings; the registered blocks read them.
_DEFAULT = DecoderSettings()


@registry.misc("spacy_cllmfs.Decoding.v1")
def decoding(
    max_new_tokens: int = _DEFAULT.max_new_tokens,
    max_span_tokens: int = _DEFAULT.max_span_tokens,
    batch_size: int = 48,
    reuse_cache: bool = _DEFAULT.reuse_cache,
    threshold: float = _DEFAULT.threshold,
) -> DecoderSettings:
    """[components.cllmfs_ner.decoding]: constrained greedy decoding; entities scored below
    `threshold` are left out. Batches hold `batch_size` rows, with no memory bound, through
    the LoRA layers (the project's source and smoke configs use it; v2 is the default)."""
    return DecoderSettings(max_new_tokens, max_span_tokens, batch_size, reuse_cache, threshold,
                           cache_mb=0.0, merge_adapter=False)


@registry.misc("spacy_cllmfs.Decoding.v2")
def decoding_v2(
    max_new_tokens: int = _DEFAULT.max_new_tokens,
    max_span_tokens: int = _DEFAULT.max_span_tokens,
    batch_size: int = _DEFAULT.batch_size,
    reuse_cache: bool = _DEFAULT.reuse_cache,
    threshold: float = _DEFAULT.threshold,
    cache_mb: float = _DEFAULT.cache_mb,
    merge_adapter: bool = _DEFAULT.merge_adapter,
    answer_threshold: float = _DEFAULT.answer_threshold,
    window_tokens: int = _DEFAULT.window_tokens,
) -> DecoderSettings:
    """[components.cllmfs_ner.decoding]: as v1, but a batch's rows are bounded by the memory
    of their key/value caches (`cache_mb`), `batch_size` rows at most, a float32 model
    decodes with the adapter merged into its weights (`merge_adapter`), and a long document
    is read in windows of about a training sentence's length (`window_tokens`)."""
    return DecoderSettings(
        max_new_tokens, max_span_tokens, batch_size, reuse_cache, threshold, cache_mb,
        merge_adapter, answer_threshold, window_tokens,
    )


class Decoder(Protocol):
    lm: object  # the model it decodes with

    def decode(
        self, texts: Sequence[EncodedText], indexes: Sequence[SpanIndex], labels: Sequence[str]
    ) -> List[List[Entity]]:
        """The entities of every type in every text (one list per text)."""

    def forget_prefix(self) -> None:
        """Drop what was computed from the weights; call it whenever they change."""


class PlainDecoder:
    def __init__(self, lm, prompter: Prompter, settings: DecoderSettings):
        self.lm, self.prompter, self.settings = lm, prompter, settings

    def forget_prefix(self) -> None:
        pass  # nothing is cached

    def decode(self, texts, indexes, labels) -> List[List[Entity]]:
        found: List[List[Entity]] = [[] for _ in texts]
        keys = self.prompter.keys(labels)
        rows = [(i, key) for i in range(len(texts)) for key in keys]
        for chunk in minibatch(rows, self.settings.batch_size):
            prompts = [self.prompter.prompt_ids(texts[i], label) for i, label in chunk]
            constraint = SpanConstraint(
                [indexes[i] for i, _ in chunk], [label for _, label in chunk], self.prompter,
                self.settings.answer_threshold,
            )
            self._generate(prompts, constraint)
            for row, (i, _) in enumerate(chunk):
                found[i].extend(constraint.entities(row))
        return found

    @torch.inference_mode()
    def _generate(self, prompts: Sequence[Sequence[int]], constraint: SpanConstraint) -> None:
        from transformers import LogitsProcessorList

        pad = self.prompter.pad_id
        input_ids, mask = left_pad(prompts, pad, self.lm.device)
        output = self.lm.generate(
            input_ids=input_ids,
            attention_mask=mask,
            generation_config=greedy_config(
                self.settings.max_new_tokens, self.prompter.eos_id, pad
            ),
            logits_processor=LogitsProcessorList([constraint]),
        )
        constraint.finish(output[:, input_ids.shape[1]:])
