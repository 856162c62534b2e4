"""spacy-cllmfs: few-shot NER with LoRA-adapted LLMs (CLLMFS) as a spaCy pipeline component."""
from .adapter import lora_config
from .decoders import DecoderSettings, decoding
from .errors import AdapterError, BaseModelError, CLLMFSError, CorpusError, SamplingError
from .language_model import LanguageModel, causal_lm_lora
from .loading import BaseModelSpec, hf_model, smollm2
from .loss import CLLMFSLoss, cllmfs_loss
from .pipe import CLLMFSNer, make_cllmfs_ner
from . import recipe, training_log  # registered config parts  # noqa: F401
from .testing import tiny_llama

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "BaseModelError",
    "BaseModelSpec",
    "CLLMFSError",
    "CLLMFSLoss",
    "CLLMFSNer",
    "CorpusError",
    "DecoderSettings",
    "LanguageModel",
    "SamplingError",
    "causal_lm_lora",
    "cllmfs_loss",
    "decoding",
    "hf_model",
    "lora_config",
    "make_cllmfs_ner",
    "smollm2",
    "tiny_llama",
]
