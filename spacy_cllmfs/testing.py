"""The tiny random Llama and its tokenizer, for tests and smoke runs: built from nothing in
milliseconds, so no test needs a download or package data.

The tokenizer is a small byte-level BPE, so every string (emoji, control characters, any script)
encodes and decodes exactly, as with the real models' tokenizers.
"""
import functools
from functools import lru_cache

import torch
from spacy.util import registry

from .loading import BaseModelSpec

# Written for this package: enough text for a few hundred merges, no data set's sentences.
_CORPUS = """\
Extract every entity of the type below from the text.
Write each entity between delimiters, copied exactly from the text.
### Text:
### Type:
### Response:
Maria Lopez flew from Madrid to Oslo on Monday to meet the board of Northwind Labs.
The city council of Lagos approved a new bridge across the lagoon.
Kenji Watanabe joined Acme Robotics as chief engineer in March.
Apple and Google opened offices in Nairobi and Berlin last year.
The river Thames runs through London, past the Tower and Greenwich.
names of people; companies, agencies, institutions; cities, countries, places.
PERSON ORG LOC GPE PRODUCT EVENT DATE
"""


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    tokenizer.train_from_iterator(
        _CORPUS.splitlines(),
        vocab_size=600,
        min_frequency=1,
        show_progress=False,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
    )
    return tokenizer._tokenizer.to_str()


def tiny_tokenizer():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )


@registry.misc("spacy_cllmfs.TinyLlama.v1")
def tiny_llama(
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 4,
    num_heads: int = 4,
    max_positions: int = 1024,
    dtype: str = "auto",
) -> BaseModelSpec:
    """A tiny random LlamaForCausalLM with a small byte-level BPE tokenizer, for tests.

    Built from nothing in milliseconds, so tests need no download and no package data.
    """
    loader = functools.partial(
        _build_tiny_llama, seed, hidden_size, num_layers, num_heads, max_positions
    )
    return BaseModelSpec(name=f"tiny-random-llama-{seed}", loader=loader, dtype=dtype)


def _build_tiny_llama(seed, hidden_size, num_layers, num_heads, max_positions, torch_dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        # Wide enough that a frozen random head can express confident predictions.
        initializer_range=0.5,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config).to(torch_dtype)
    finally:
        torch.random.set_rng_state(generator_state)
    model.config._name_or_path = f"tiny-random-llama-{seed}"
    return model, tokenizer
