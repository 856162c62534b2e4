import pytest
import torch

from spacy_cllmfs import BaseModelError, hf_model, tiny_llama
from spacy_cllmfs.loading import fingerprint, resolve_dtype


def test_dtype_follows_the_device():
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("float8", torch.device("cpu"))


def test_tiny_model_is_deterministic_and_seeded():
    a, _ = tiny_llama(seed=0).load()
    b, _ = tiny_llama(seed=0).load()
    c, _ = tiny_llama(seed=1).load()
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert a.device.type == "cpu" and a.dtype == torch.float32


def test_hf_model_loads_a_local_directory(tmp_path):
    model, tokenizer = tiny_llama(seed=3).load()
    model.save_pretrained(tmp_path, safe_serialization=True)
    tokenizer.save_pretrained(tmp_path)
    loaded, tok = hf_model(str(tmp_path)).load()
    assert fingerprint(loaded) == fingerprint(model)
    assert tok("Ana met Bo")["input_ids"] == tokenizer("Ana met Bo")["input_ids"]
    ids = torch.tensor([tokenizer("Ana met Bo")["input_ids"]])
    assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)


def test_hf_model_refuses_pickled_weights(tmp_path):
    model, tokenizer = tiny_llama(seed=3).load()
    model.config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle
    with pytest.raises(BaseModelError, match="safetensors"):
        hf_model(str(tmp_path)).load()


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(BaseModelError, match="Could not load the base model"):
        hf_model(str(tmp_path / "nowhere")).load()


def test_remote_code_is_off_by_default(tmp_path, monkeypatch):
    """The flag transformers receives, when the config does not set it, is False."""
    import transformers

    seen = []

    def fake(name, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        raise OSError("stop here")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake)
    with pytest.raises(BaseModelError):
        hf_model(str(tmp_path)).load()
    with pytest.raises(BaseModelError):
        hf_model(str(tmp_path), trust_remote_code=True).load()
    assert seen == [False, True]
