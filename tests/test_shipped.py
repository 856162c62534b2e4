"""Where initialize starts from (model.start): the shipped general adapter where it fits the base
model and template, a blank adapter otherwise (with a log line), or a named adapter folder."""
import json
import logging
import shutil

import pytest
import torch

from spacy_cllmfs import shipped
from spacy_cllmfs.errors import AdapterError

from .util import TRAIN, ents, examples, tiny_nlp


def lora_weights(nlp):
    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    return {n: p.detach().clone() for n, p in lm.named_parameters() if "lora_" in n}


@pytest.fixture(scope="module")
def adapter_folder(trained_nlp, tmp_path_factory):
    """The trained tiny pipeline's adapter, as a shipped adapter folder (with its card)."""
    path = tmp_path_factory.mktemp("shipped")
    trained_nlp.to_disk(path / "nlp")
    folder = path / "general-ner.v1"
    shutil.copytree(path / "nlp" / "cllmfs_ner" / "adapter", folder)
    identity = json.loads((folder / "base_model.json").read_text())
    (folder / shipped.CARD).write_text(json.dumps({"template": "ner.v1", "base_model": identity}))
    return folder


def test_default_on_another_base_model_is_blank_with_a_log_line(caplog):
    nlp = tiny_nlp()
    with caplog.at_level(logging.WARNING, logger="spacy_cllmfs"):
        nlp.initialize()
    assert "starting from a blank adapter" in caplog.text
    assert all(not w.any() for n, w in lora_weights(nlp).items() if "lora_B" in n)


def test_blank_says_nothing(caplog):
    nlp = tiny_nlp(model={"base_model": {"@misc": "spacy_cllmfs.TinyLlama.v1"}, "start": "blank"})
    with caplog.at_level(logging.WARNING, logger="spacy_cllmfs"):
        nlp.initialize()
    assert "blank adapter" not in caplog.text


def model(start):
    return {"base_model": {"@misc": "spacy_cllmfs.TinyLlama.v1"}, "start": start}


def test_default_uses_the_shipped_adapter_when_it_fits(trained_nlp, adapter_folder, monkeypatch):
    monkeypatch.setattr(shipped, "shipped_folder", lambda name: adapter_folder)
    nlp = tiny_nlp(model=model("default"))
    nlp.initialize()  # no examples: zero-shot from the shipped adapter
    expected = lora_weights(trained_nlp)
    assert all(torch.equal(w, expected[n]) for n, w in lora_weights(nlp).items())
    for text, _ in TRAIN:
        assert ents(nlp(text)) == ents(trained_nlp(text))
    # and training goes on from it
    nlp.get_pipe("cllmfs_ner").update(examples(nlp))


def test_default_with_another_template_is_blank(adapter_folder, monkeypatch, caplog):
    monkeypatch.setattr(shipped, "shipped_folder", lambda name: adapter_folder)
    nlp = tiny_nlp(model=model("default"), template="ner.v2")
    with caplog.at_level(logging.WARNING, logger="spacy_cllmfs"):
        nlp.initialize()
    assert "trained with the template 'ner.v1'" in caplog.text
    assert all(not w.any() for n, w in lora_weights(nlp).items() if "lora_B" in n)


def test_a_folder_is_loaded_or_refused(trained_nlp, adapter_folder, tmp_path):
    nlp = tiny_nlp(model=model(str(adapter_folder)))
    nlp.initialize()
    assert ents(nlp(TRAIN[0][0])) == ents(trained_nlp(TRAIN[0][0]))
    with pytest.raises(AdapterError, match="trained with the template 'ner.v1'"):
        tiny_nlp(model=model(str(adapter_folder)), template="ner.v2").initialize()
    with pytest.raises(AdapterError, match="neither 'default', 'blank'"):
        tiny_nlp(model=model(str(tmp_path / "missing"))).initialize()
    # a folder whose base model differs is refused by its fingerprint
    other = tmp_path / "other"
    shutil.copytree(adapter_folder, other)
    identity = json.loads((other / "base_model.json").read_text())
    (other / "base_model.json").write_text(json.dumps({**identity, "fingerprint": "0" * 32}))
    with pytest.raises(AdapterError, match="fingerprint"):
        tiny_nlp(model=model(str(other))).initialize()


def test_to_disk_stays_adapter_only(adapter_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "shipped_folder", lambda name: adapter_folder)
    nlp = tiny_nlp(model=model("default"))
    nlp.initialize()
    nlp.to_disk(tmp_path / "nlp")
    files = sorted(p.name for p in (tmp_path / "nlp" / "cllmfs_ner" / "adapter").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "base_model.json"]
    size = sum(p.stat().st_size for p in (tmp_path / "nlp").rglob("*") if p.is_file())
    assert size < 5_000_000  # no base weights


def test_another_templates_adapter_starts_a_component_through_a_copy(
        trained_nlp, adapter_folder, tmp_path):
    """project/scripts/warm_start.py: the weights of a ner.v1 adapter, without its card, start
    a ner.v3 component (refused straight from the carded folder); the fingerprint still holds."""
    from .util import load_script

    warm_start = load_script("warm_start")
    with pytest.raises(AdapterError, match="trained with the template 'ner.v1'"):
        tiny_nlp(model=model(str(adapter_folder)), template="ner.v3").initialize()
    warm_start.main(str(adapter_folder), str(tmp_path / "start"))
    assert not (tmp_path / "start" / shipped.CARD).exists()
    nlp = tiny_nlp(model=model(str(tmp_path / "start")), template="ner.v3")
    nlp.initialize()
    expected = lora_weights(trained_nlp)
    assert all(torch.equal(w, expected[n]) for n, w in lora_weights(nlp).items())
    with pytest.raises(SystemExit, match="not a saved adapter"):
        warm_start.main(str(tmp_path / "nothing"), str(tmp_path / "other"))
