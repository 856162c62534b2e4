"""Decoding with the adapter folded into the base weights (decoding.merge_adapter), and the
weights coming back out before anything changes the adapter."""
import dataclasses

import pytest
import torch
from thinc.api import Adam

from .util import TRAIN, ents, examples, tiny_nlp, train

# Written for these tests.
TEXTS = [text for text, _ in TRAIN] + ["Apple and Maria Lopez met Tim Cook in Madrid."]


@pytest.fixture(scope="module")
def nlp():
    return train(tiny_nlp())


@pytest.fixture(autouse=True)
def unmerged_start(request):
    """Each test starts from the adapter taken out of the base weights and the default
    decoding settings, whatever the tests before it (in any order) left."""
    if "nlp" not in request.fixturenames:
        yield
        return
    pipe = request.getfixturevalue("nlp").get_pipe("cllmfs_ner")
    settings = pipe.decoding
    pipe.language_model.unmerge()
    yield
    pipe.decoding = settings


def base_weights(nlp):
    lm = nlp.get_pipe("cllmfs_ner").language_model
    return {n: p.detach().clone() for n, p in lm.base.named_parameters() if "lora_" not in n}


def adapter_weights(nlp):
    lm = nlp.get_pipe("cllmfs_ner").language_model
    return {n: p.detach().clone() for n, p in lm.lm.named_parameters() if p.requires_grad}


def spans(docs):
    return [[e[:3] for e in found] for found in docs]


def assert_bare(nlp, bare):
    for name, weight in base_weights(nlp).items():
        torch.testing.assert_close(weight, bare[name], atol=1e-6, rtol=0)


def test_merged_decoding_predicts_what_the_adapter_predicts(nlp):
    pipe = nlp.get_pipe("cllmfs_ner")
    lm = pipe.language_model
    assert pipe.decoding.merge_adapter  # the default (Decoding.v2)
    pipe.decoding = dataclasses.replace(pipe.decoding, merge_adapter=False)
    unmerged = [ents(doc) for doc in nlp.pipe(TEXTS)]
    assert not lm.merged
    bare = base_weights(nlp)
    pipe.decoding = dataclasses.replace(pipe.decoding, merge_adapter=True)
    merged = [ents(doc) for doc in nlp.pipe(TEXTS)]
    assert lm.merged
    assert any(not torch.equal(w, bare[n]) for n, w in base_weights(nlp).items())
    assert sum(map(len, unmerged)) > 0
    assert spans(merged) == spans(unmerged)
    for a, b in zip(merged, unmerged):
        assert [e[3] for e in a] == pytest.approx([e[3] for e in b], abs=1e-4)


def test_training_after_merged_decoding_trains_the_adapter_on_the_bare_base(nlp):
    lm = nlp.get_pipe("cllmfs_ner").language_model
    lm.unmerge()
    bare = base_weights(nlp)
    list(nlp.pipe(TEXTS))
    assert lm.merged
    before = adapter_weights(nlp)
    nlp.update(examples(nlp), sgd=Adam(0.01))
    assert not lm.merged
    assert_bare(nlp, bare)
    after = adapter_weights(nlp)
    assert any(not torch.equal(after[n], before[n]) for n in before)
    # and the next prediction merges the new adapter
    list(nlp.pipe(TEXTS))
    assert lm.merged


def test_use_params_decodes_with_the_averages_and_restores_the_adapter(nlp):
    pipe = nlp.get_pipe("cllmfs_ner")
    lm = pipe.language_model
    lm.unmerge()
    bare = base_weights(nlp)
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(3):
        nlp.update(examples(nlp), sgd=optimizer)
    current = [ents(doc) for doc in nlp.pipe(TEXTS)]
    adapter = adapter_weights(nlp)
    with nlp.use_params(optimizer.averages):
        list(nlp.pipe(TEXTS))
        assert lm.merged
    assert not lm.merged
    assert_bare(nlp, bare)
    for name, weight in adapter_weights(nlp).items():
        assert torch.equal(weight, adapter[name])
    assert spans(ents(doc) for doc in nlp.pipe(TEXTS)) == spans(current)


def test_a_new_adapter_goes_onto_the_bare_base(nlp, tmp_path):
    lm = nlp.get_pipe("cllmfs_ner").language_model
    lm.unmerge()
    bare = base_weights(nlp)
    expected = [ents(doc) for doc in nlp.pipe(TEXTS)]
    assert lm.merged
    nlp.to_disk(tmp_path)
    nlp.from_disk(tmp_path)  # unloads the merged adapter, loads the saved one
    assert not lm.merged
    assert_bare(nlp, bare)
    assert spans(ents(doc) for doc in nlp.pipe(TEXTS)) == spans(expected)


def test_no_merge_in_half_precision_or_when_switched_off():
    half = tiny_nlp(base_model={"dtype": "bfloat16"})
    half.initialize()
    list(half.pipe(TEXTS))
    assert not half.get_pipe("cllmfs_ner").language_model.merged
    off = tiny_nlp(decoding={"merge_adapter": False})
    off.initialize()
    list(off.pipe(TEXTS))
    assert not off.get_pipe("cllmfs_ner").language_model.merged
    from confection import ConfigValidationError

    from spacy_cllmfs.decoders import DecoderSettings

    with pytest.raises(ConfigValidationError, match="merge_adapter"):
        tiny_nlp(decoding={"merge_adapter": "yes"})
    with pytest.raises(ValueError, match="decoding.merge_adapter must be true or false"):
        DecoderSettings(merge_adapter="yes")
