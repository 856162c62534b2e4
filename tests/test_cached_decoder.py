"""The cached decoder predicts what plain `generate` on full prompts predicts."""
import copy
import dataclasses

import pytest
from thinc.api import Adam

from .util import ents, examples

# Written for these tests: seen in training, unseen, repeated mentions, empty and odd input.
TEXTS = [
    "Tim Cook said Apple will open an office in Lagos.",
    "Maria Lopez flew from Madrid.",
    "",
    "   ",
    "The board of Northwind Labs met on Monday. Tim Cook said so, and Apple agreed.",
    "x",
    "Apple, Apple and Apple: Maria Lopez met Tim Cook.",
    "A much longer sentence about nothing in particular that goes on for a while " * 3,
]


def predictions(nlp, reuse_cache, rows_per_batch, batch_size):
    pipe = nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    pipe.decoding = dataclasses.replace(saved, reuse_cache=reuse_cache, batch_size=rows_per_batch)
    try:
        return [ents(doc) for doc in nlp.pipe(TEXTS, batch_size=batch_size)]
    finally:
        pipe.decoding = saved


def test_the_setting_chooses_the_decoder(trained_nlp):
    from spacy_cllmfs.cached_decoder import CachedDecoder
    from spacy_cllmfs.decoders import PlainDecoder

    pipe = trained_nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    try:
        for reuse, kind in ((True, CachedDecoder), (False, PlainDecoder)):
            pipe.decoding = dataclasses.replace(saved, reuse_cache=reuse)
            assert isinstance(pipe._ready()[1], kind)
    finally:
        pipe.decoding = saved


@pytest.mark.parametrize("rows_per_batch,batch_size", [(1, 1), (4, 3), (16, 16)])
def test_cached_decoding_equals_plain_generate(trained_nlp, rows_per_batch, batch_size):
    plain = predictions(trained_nlp, False, 16, 16)
    fast = predictions(trained_nlp, True, rows_per_batch, batch_size)
    assert any(plain), "the trained pipeline should find entities"
    assert_same(fast, plain)


def assert_same(fast, plain):
    assert [[e[:3] for e in doc] for doc in fast] == [[e[:3] for e in doc] for doc in plain]
    for f_doc, p_doc in zip(fast, plain):
        for f, p in zip(f_doc, p_doc):
            assert f[3] == pytest.approx(p[3], rel=1e-4)


def test_the_prefix_cache_follows_the_weights(trained_nlp):
    """After an update, predictions use the new weights, not the old prefix cache."""
    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    nlp("Tim Cook said so.")  # fills the prefix cache
    decoder = pipe._ready()[1]
    assert decoder.prefix.ready
    nlp.update(examples(nlp), sgd=Adam(0.01))
    assert not decoder.prefix.ready
    assert_same(predictions(nlp, True, 16, 16), predictions(nlp, False, 16, 16))


def test_use_params_before_the_model_loads():
    from .util import tiny_nlp

    pipe = tiny_nlp().get_pipe("cllmfs_ner")
    with pipe.use_params({}):  # spaCy's trainer does this with averaged weights
        assert not pipe.language_model.loaded
