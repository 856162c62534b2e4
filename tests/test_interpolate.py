"""Interpolating a trained adapter with the adapter it started from (adapter.interpolate)."""
import pytest
import spacy
import torch
from thinc.api import Adam

from .util import TRAIN, UNSEEN, ents, examples, tiny_nlp, train


@pytest.fixture(scope="module")
def start_and_trained(tmp_path_factory):
    """A pipeline saved as the start, and the same pipeline loaded and trained further."""
    start = tmp_path_factory.mktemp("start")
    train(tiny_nlp()).to_disk(start)
    nlp = spacy.load(start)
    optimizer = Adam(0.01)
    for _ in range(10):
        nlp.update(examples(nlp, UNSEEN), sgd=optimizer)
    trained = tmp_path_factory.mktemp("trained")
    nlp.to_disk(trained)
    return start, trained


def deltas(nlp):
    """Each LoRA layer's update to its base weight."""
    from peft.tuners.lora import LoraLayer

    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    return {name: module.get_delta_weight("default").detach().clone()
            for name, module in lm.named_modules() if isinstance(module, LoraLayer)}


def interpolated(trained, start, weight):
    nlp = spacy.load(trained)
    nlp.get_pipe("cllmfs_ner").language_model.interpolate(start / "cllmfs_ner" / "adapter", weight)
    return nlp


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_update_is_the_weighted_sum_of_the_two(start_and_trained, weight):
    start, trained = start_and_trained
    before, after = deltas(spacy.load(start)), deltas(spacy.load(trained))
    assert any(not torch.allclose(before[n], after[n]) for n in before)  # they differ
    mixed = deltas(interpolated(trained, start, weight))
    assert mixed.keys() == before.keys()
    for name in before:
        expected = (1 - weight) * before[name] + weight * after[name]
        torch.testing.assert_close(mixed[name], expected, atol=1e-6, rtol=1e-5)


def test_the_ends_predict_what_the_two_adapters_predict(start_and_trained):
    start, trained = start_and_trained
    texts = [t for t, _ in TRAIN + UNSEEN]
    for weight, source in ((0.0, start), (1.0, trained)):
        expected = [[e[:3] for e in ents(d)] for d in spacy.load(source).pipe(texts)]
        got = [[e[:3] for e in ents(d)] for d in interpolated(trained, start, weight).pipe(texts)]
        assert got == expected


def test_an_interpolated_pipeline_round_trips(start_and_trained, tmp_path):
    import json

    start, trained = start_and_trained
    nlp = interpolated(trained, start, 0.5)
    nlp.to_disk(tmp_path)
    config = json.loads((tmp_path / "cllmfs_ner" / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 64 and config["lora_alpha"] == 64  # the tiny adapters' rank 32, twice
    texts = [t for t, _ in TRAIN + UNSEEN]
    assert [ents(d) for d in spacy.load(tmp_path).pipe(texts)] == [ents(d) for d in nlp.pipe(texts)]


def test_bad_weights_and_folders_are_refused(start_and_trained, tmp_path):
    from spacy_cllmfs import AdapterError

    start, trained = start_and_trained
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolated(trained, start, 1.5)
    with pytest.raises(AdapterError, match="has no adapter_config.json"):
        interpolated(trained, tmp_path, 0.5)
