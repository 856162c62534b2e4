"""The component's model for spacy-llm: base model + (optionally) a trained CLLMFS adapter,
registered in spacy-llm's `llm_models` registry as "spacy_cllmfs.CLLMFS.v1", so spacy-llm's
`llm` component and its tasks (e.g. `spacy.NER.v3`) run on it:

    [components.llm.model]
    @llm_models = "spacy_cllmfs.CLLMFS.v1"
    adapter = "training/model-best/cllmfs_ner/adapter"   # or null: the base model alone

    [components.llm.model.base_model]
    @misc = "spacy_cllmfs.SmolLM2.v1"

Generation is greedy. The prompts of a batch usually share a long prefix (a task's instructions
and its few-shot examples): its key/value cache is computed once and reused by every batch
that starts with it, so each prompt costs only its own text and answer.
"""
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

import torch

from .generation import PrefixCache, common_prefix_length, greedy_config, left_pad
from .language_model import LanguageModel
from .loading import BaseModelSpec


class CLLMFSModel:
    """Prompts per doc in, responses per doc out, as spacy-llm's models do."""

    def __init__(
        self,
        base_model: BaseModelSpec,
        adapter: Optional[str] = None,
        max_new_tokens: int = 128,
        batch_size: int = 8,
        stop: Sequence[str] = ("\n\n",),
    ):
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be >= 1."
            )
        self.language_model = LanguageModel(base_model)
        self.adapter = adapter
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop = list(stop)
        self.prefix = PrefixCache()

    @property
    def context_length(self) -> int:
        """Tokens a prompt may use: the model's context minus room for the answer."""
        self._ensure_model()
        return self.language_model.context - self.max_new_tokens

    def __call__(self, prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        """One response per prompt, grouped per doc like the prompts (one or more shards)."""
        self._ensure_model()
        docs: List[List[str]] = []
        flat: List[str] = []
        for doc_prompts in prompts:
            doc_prompts = list(doc_prompts)
            docs.append(doc_prompts)
            flat.extend(doc_prompts)
        responses = iter(self.generate(flat))
        return [[next(responses) for _ in doc_prompts] for doc_prompts in docs]

    def generate(self, prompts: Sequence[str]) -> List[str]:
        self._ensure_model()
        out: List[str] = []
        for start in range(0, len(prompts), self.batch_size):
            out.extend(self._generate_batch(prompts[start : start + self.batch_size]))
        return out

    # -- internals ------------------------------------------------------------------------------

    def _ensure_model(self) -> None:
        if not self.language_model.loaded:
            self.language_model.load_adapter(None if self.adapter is None else Path(self.adapter))

    @torch.inference_mode()
    def _generate_batch(self, prompts: Sequence[str]) -> Iterator[str]:
        lm, tokenizer = self.language_model.lm, self.language_model.tokenizer
        rows = [tokenizer(p)["input_ids"] for p in prompts]
        if any(not row for row in rows):
            raise ValueError("spacy_cllmfs.CLLMFS.v1 was given an empty prompt.")
        prefix = self._shared_prefix(rows)
        pad = tokenizer.pad_token_id
        # The prefix, then each row's rest padded on the left.
        rest, rest_mask = left_pad([r[len(prefix):] for r in rows], pad, lm.device)
        head = torch.tensor(prefix, dtype=rest.dtype, device=lm.device).expand(len(rows), -1)
        ids = torch.cat([head, rest], dim=1)
        mask = torch.cat([rest_mask.new_ones(len(rows), len(prefix)), rest_mask], dim=1)
        config = greedy_config(self.max_new_tokens, tokenizer.eos_token_id, pad,
                               stop_strings=self.stop or None)
        kwargs = {"cache": self.prefix.expand(len(rows))} if prefix else {}
        output = lm.generate(
            input_ids=ids, attention_mask=mask, generation_config=config, tokenizer=tokenizer,
            **kwargs,
        )
        texts = tokenizer.batch_decode(output[:, ids.shape[1]:], skip_special_tokens=True)
        return [self._cut(text) for text in texts]

    def _cut(self, text: str) -> str:
        """The response up to its first stop string (generation stops after it)."""
        for stop in self.stop:
            if stop in text:
                text = text[: text.index(stop)]
        return text

    def _shared_prefix(self, rows: Sequence[Sequence[int]]) -> tuple:
        """The prefix the rows share, its key/value cache computed once (self.prefix).

        The prefix stops one token short of the shortest row, so every row feeds at least one
        token to generate. The cached prefix is reused while every row starts with it.
        """
        cached = self.prefix.ids
        shortest = min(len(r) for r in rows)
        if cached and len(cached) < shortest and all(tuple(r[: len(cached)]) == cached for r in rows):
            return cached
        common = common_prefix_length(rows, shortest - 1)
        if common == 0:
            return ()
        self.prefix.compute(self.language_model.lm, rows[0][:common])
        return self.prefix.ids


def cllmfs_llm(
    base_model: BaseModelSpec,
    adapter: Optional[str] = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    stop: Sequence[str] = ("\n\n",),
) -> CLLMFSModel:
    """spacy-llm model "spacy_cllmfs.CLLMFS.v1": the base model, with the LoRA adapter saved
    at `adapter` (a trained pipeline's `cllmfs_ner/adapter` folder) when one is given."""
    return CLLMFSModel(base_model, adapter, max_new_tokens, batch_size, stop)


def in_context_pipeline(base_model: dict, labels, shots, max_new_tokens: int = 128):
    """A blank English pipeline with spacy-llm's `spacy.NER.v3` task on the base model (a
    [model.base_model] block, no adapter): `shots` (annotated docs) are its prompt examples and
    the labels' descriptions (when `labels` is a dict) its label definitions. The in-context
    baseline the project compares with; needs spacy-llm."""
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    task = {"@llm_tasks": "spacy.NER.v3", "labels": list(labels)}
    if isinstance(labels, dict):
        task["label_definitions"] = dict(labels)
    nlp.add_pipe("llm", config={
        "task": task,
        "model": {"@llm_models": "spacy_cllmfs.CLLMFS.v1", "base_model": dict(base_model),
                  "max_new_tokens": max_new_tokens},
    })
    examples = [Example(nlp.make_doc(d.text), d) for d in shots]
    nlp.config["initialize"]["components"]["llm"] = {"n_prompt_examples": -1}
    nlp.initialize(lambda: examples)
    return nlp
