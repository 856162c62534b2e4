"""spacy-cllmfs: few-shot NER with LoRA-adapted LLMs (CLLMFS) as a spaCy pipeline component."""
from .adapter import lora_config
from .errors import AdapterError, BaseModelError, CLLMFSError
from .models import BaseModel, hf_model, smollm2, tiny_llama
from .pipe import CLLMFSNer, make_cllmfs_ner

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "BaseModel",
    "BaseModelError",
    "CLLMFSError",
    "CLLMFSNer",
    "hf_model",
    "lora_config",
    "make_cllmfs_ner",
    "smollm2",
    "tiny_llama",
]
