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
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import torch

from . import adapter as adapters
from .models import BaseModel


class CLLMFSModel:
    """Prompts per doc in, responses per doc out, as spacy-llm's models do."""

    def __init__(
        self,
        base_model: BaseModel,
        adapter: Optional[str] = None,
        max_new_tokens: int = 128,
        batch_size: int = 8,
        stop: Sequence[str] = ("\n\n",),
    ):
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be >= 1."
            )
        self.base_model = base_model
        self.adapter = adapter
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.stop = list(stop)
        self._lm = None
        self._tokenizer = None
        self._prefix: Tuple[Tuple[int, ...], list] = ((), [])

    @property
    def context_length(self) -> int:
        """Tokens a prompt may use: the model's context minus room for the answer."""
        self._ensure_model()
        return self._lm.config.max_position_embeddings - self.max_new_tokens

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
        if self._lm is not None:
            return
        from pathlib import Path

        lm, tokenizer = self.base_model.load()
        if self.adapter is not None:
            identity = adapters.identity(lm, self.base_model.name)
            lm = adapters.load(lm, Path(self.adapter), identity)
            lm.eval()
        self._lm, self._tokenizer = lm, tokenizer

    @torch.inference_mode()
    def _generate_batch(self, prompts: Sequence[str]) -> Iterator[str]:
        from transformers import DynamicCache, GenerationConfig

        tokenizer = self._tokenizer
        rows = [tokenizer(p)["input_ids"] for p in prompts]
        if any(not row for row in rows):
            raise ValueError("spacy_cllmfs.CLLMFS.v1 was given an empty prompt.")
        prefix, cache_data = self._prefix_for(rows)
        width = max(len(r) - len(prefix) for r in rows)
        pad = tokenizer.pad_token_id
        ids, mask = [], []
        for row in rows:
            rest = row[len(prefix):]
            ids.append(list(prefix) + [pad] * (width - len(rest)) + rest)
            mask.append([1] * len(prefix) + [0] * (width - len(rest)) + [1] * len(rest))
        device = self._lm.device
        ids = torch.tensor(ids, device=device)
        mask = torch.tensor(mask, device=device)
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad,
            stop_strings=self.stop or None,
        )
        kwargs = {}
        if cache_data:
            kwargs["past_key_values"] = DynamicCache(
                ddp_cache_data=[
                    (k.expand(len(rows), -1, -1, -1).contiguous(),
                     v.expand(len(rows), -1, -1, -1).contiguous())
                    for k, v in cache_data
                ]
            )
        output = self._lm.generate(
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

    def _prefix_for(self, rows: Sequence[Sequence[int]]):
        """The shared prefix of the rows and its key/value cache, computed once per prefix.

        The prefix stops one token short of the shortest row, so every row feeds at least one
        token to generate. The cached prefix is reused while every row starts with it.
        """
        cached, data = self._prefix
        shortest = min(len(r) for r in rows)
        if cached and len(cached) < shortest and all(tuple(r[: len(cached)]) == cached for r in rows):
            return cached, data
        common = 0
        while common < shortest - 1 and all(r[common] == rows[0][common] for r in rows):
            common += 1
        if common == 0:
            return (), []
        from transformers import DynamicCache

        prefix = tuple(rows[0][:common])
        cache = DynamicCache()
        ids = torch.tensor([prefix], device=self._lm.device)
        self._lm(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache,
                 use_cache=True, logits_to_keep=1)
        data = [(layer.keys, layer.values) for layer in cache.layers]
        self._prefix = (prefix, data)
        return prefix, data


def cllmfs_llm(
    base_model: BaseModel,
    adapter: Optional[str] = None,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    stop: Sequence[str] = ("\n\n",),
) -> CLLMFSModel:
    """spacy-llm model "spacy_cllmfs.CLLMFS.v1": the base model, with the LoRA adapter saved
    at `adapter` (a trained pipeline's `cllmfs_ner/adapter` folder) when one is given."""
    return CLLMFSModel(base_model, adapter, max_new_tokens, batch_size, stop)
