"""A small byte-level BPE tokenizer for the tiny test model.

Byte-level, so every string (emoji, control characters, any script) encodes and decodes
exactly, as with the real models' tokenizers.
"""
from functools import lru_cache

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
