import dataclasses

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Span

from spacy_cllmfs.constraint import Entity

import spacy_cllmfs  # noqa: F401  (registers the factory; entry points: test_entry_points)

from .util import LABELS, TRAIN, ents, tiny_nlp


def test_factory_meta_matches_spacy_ner():
    meta = Language.get_factory_meta("cllmfs_ner")
    assert "doc.ents" in meta.assigns
    assert meta.default_score_weights["ents_f"] == 1.0


def test_add_pipe_and_config_validation_load_no_weights():
    nlp = tiny_nlp()
    pipe = nlp.get_pipe("cllmfs_ner")
    assert not pipe.language_model.loaded
    spacy.util.load_model_from_config(nlp.config, auto_fill=True)  # validates the config
    assert not pipe.language_model.loaded


def test_labels_list_or_dict():
    assert tiny_nlp(labels=["PERSON", "ORG"]).get_pipe("cllmfs_ner").label_descriptions == {
        "PERSON": "PERSON",
        "ORG": "ORG",
    }
    assert tiny_nlp(labels=LABELS).get_pipe("cllmfs_ner").label_descriptions == LABELS


def test_no_labels_is_a_clear_error():
    nlp = tiny_nlp(labels=[])
    with pytest.raises(ValueError, match="no entity labels"):
        nlp("Tim Cook.")


def test_labels_from_examples_on_initialize():
    from .util import examples

    nlp = tiny_nlp(labels=[])
    nlp.initialize(lambda: examples(nlp))
    assert set(nlp.get_pipe("cllmfs_ner").labels) == {"PERSON", "ORG"}


@pytest.mark.parametrize("key", ["max_new_tokens", "max_span_tokens", "batch_size"])
def test_bad_decoding_values_are_rejected(key):
    with pytest.raises(ValueError, match=f"decoding.{key} must be an integer >= 1"):
        tiny_nlp(decoding={key: 0})


def test_bad_cache_budget_is_rejected():
    from spacy_cllmfs.decoders import DecoderSettings

    with pytest.raises(ValueError, match="decoding.cache_mb must be a number >= 0"):
        tiny_nlp(decoding={"cache_mb": -1})
    for value in (True, "256", float("nan")):
        with pytest.raises(ValueError, match="decoding.cache_mb must be a number >= 0"):
            DecoderSettings(cache_mb=value)


def test_decoding_v1_keeps_fixed_batches_and_v2_is_the_default():
    assert tiny_nlp().config["components"]["cllmfs_ner"]["decoding"]["@misc"] == (
        "spacy_cllmfs.Decoding.v2")
    v1 = tiny_nlp(decoding={"@misc": "spacy_cllmfs.Decoding.v1", "batch_size": 48})
    assert v1.get_pipe("cllmfs_ner").decoding.cache_mb == 0
    assert tiny_nlp().get_pipe("cllmfs_ner").decoding.cache_mb > 0


def test_untrained_pipe_loads_on_first_use_and_writes_valid_entities():
    # Seed 8: a random tiny model that writes an entity on these texts (most seeds answer
    # "none" at once), so the checks below are not vacuous.
    nlp = tiny_nlp(base_model={"seed": 8})
    pipe = nlp.get_pipe("cllmfs_ner")
    texts = [t for t, _ in TRAIN] + ["", "   ", "a"]
    docs = list(nlp.pipe(texts))
    assert pipe.language_model.loaded  # first use loaded the base and a fresh adapter
    assert [d.text for d in docs] == texts
    found = [ent for doc in docs for ent in doc.ents]
    assert found
    for ent in found:
        assert ent.label_ in LABELS and 0 < ent._.cllmfs_score <= 1
        assert ent.doc.text[ent.start_char : ent.end_char] == ent.text


def test_trained_pipe_predicts_the_gold_spans(trained_nlp):
    for text, gold in TRAIN:
        doc = trained_nlp(text)
        assert [(s, e, label) for s, e, label, _ in ents(doc)] == gold
        for ent in doc.ents:
            assert 0.5 < ent._.cllmfs_score <= 1.0


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_pipe_batches_yield_every_doc_in_order(trained_nlp, batch_size):
    texts = [t for t, _ in TRAIN] * 2 + ["", "Nothing here."]
    single = [ents(trained_nlp(t)) for t in texts]
    docs = list(trained_nlp.pipe(texts, batch_size=batch_size))
    assert [d.text for d in docs] == texts
    for doc, expected in zip(docs, single):
        got = ents(doc)
        assert [e[:3] for e in got] == [e[:3] for e in expected]
        assert [e[3] for e in got] == pytest.approx([e[3] for e in expected], abs=1e-4)


def test_generation_batch_size_does_not_change_predictions(trained_nlp):
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    texts = [t for t, _ in TRAIN]
    before = [ents(d) for d in trained_nlp.pipe(texts)]
    old = pipe.decoding
    try:
        pipe.decoding = dataclasses.replace(old, batch_size=1)
        after = [ents(d) for d in trained_nlp.pipe(texts)]
    finally:
        pipe.decoding = old
    assert all(before)
    assert [[e[:3] for e in d] for d in after] == [[e[:3] for e in d] for d in before]


def _pipe(overwrite=False):
    nlp = tiny_nlp(overwrite_ents=overwrite)
    return nlp, nlp.get_pipe("cllmfs_ner")


def test_overlaps_resolved_by_score_then_length():
    nlp, pipe = _pipe()
    doc = nlp.make_doc("Ana Bo met Cy Dee today")
    pipe.set_annotations(
        [doc],
        [[Entity("PERSON", 0, 2, 0.6), Entity("ORG", 1, 2, 0.9), Entity("PERSON", 3, 5, 0.7),
          Entity("ORG", 3, 4, 0.7)]],
    )
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(1, 2, "ORG"), (3, 5, "PERSON")]
    assert [e._.cllmfs_score for e in doc.ents] == [0.9, 0.7]


@pytest.mark.parametrize("overwrite", [False, True])
def test_existing_entities_kept_or_overwritten(overwrite):
    nlp, pipe = _pipe(overwrite)
    doc = nlp.make_doc("Ana Bo met Cy Dee today")
    doc.ents = [Span(doc, 0, 1, label="GPE"), Span(doc, 5, 6, label="DATE")]
    pipe.set_annotations([doc], [[Entity("PERSON", 0, 2, 0.8), Entity("PERSON", 3, 5, 0.7)]])
    got = [(e.start, e.end, e.label_) for e in doc.ents]
    if overwrite:
        assert got == [(0, 2, "PERSON"), (3, 5, "PERSON"), (5, 6, "DATE")]
    else:
        assert got == [(0, 1, "GPE"), (3, 5, "PERSON"), (5, 6, "DATE")]
        assert doc.ents[0]._.cllmfs_score is None  # not ours


def test_training_only_changes_lora_weights():
    from .util import train

    nlp = tiny_nlp()
    nlp.initialize()
    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    before = {n: p.detach().clone() for n, p in lm.named_parameters()}
    train(nlp, steps=2)
    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    changed = {n for n, p in lm.named_parameters() if not p.detach().equal(before[n])}
    assert changed and all("lora_" in n for n in changed)


def test_an_empty_training_set_is_a_clear_error():
    nlp = tiny_nlp(labels=[])
    with pytest.raises(ValueError, match="training set given to 'cllmfs_ner' is empty"):
        nlp.initialize(lambda: [])


def test_training_on_docs_without_entities_and_a_label_with_one_example():
    from thinc.api import Adam

    from spacy_cllmfs.rows import build_rows

    from .util import examples

    data = [
        ("Nothing to see here.", []),
        ("Tim Cook said so.", [(0, 8, "PERSON")]),  # the only PERSON, the only example
    ]
    nlp = tiny_nlp(labels=["PERSON", "ORG"])
    egs = examples(nlp, data)
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("cllmfs_ner")
    prompter, _ = pipe._ready()
    rows = build_rows([eg.reference for eg in egs], prompter, pipe.label_descriptions)
    empty = (prompter.eos_id,)
    assert [(r.label, r.response == empty) for r in rows] == [
        ("PERSON", True), ("ORG", True), ("PERSON", False), ("ORG", True)
    ]
    losses = nlp.update(egs, sgd=Adam(0.01))
    assert 0 < losses["cllmfs_ner"] < float("inf")


def test_the_threshold_leaves_out_entities_scored_below_it(trained_nlp):
    texts = [t for t, _ in TRAIN]
    found = [ents(doc) for doc in trained_nlp.pipe(texts)]
    scores = sorted(s for doc in found for *_, s in doc)
    assert len(scores) >= 2 and scores[0] < scores[-1]
    cut = (scores[0] + scores[-1]) / 2
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    settings = pipe.decoding
    pipe.decoding = dataclasses.replace(settings, threshold=cut)
    try:
        kept = [ents(doc) for doc in trained_nlp.pipe(texts)]
    finally:
        pipe.decoding = settings
    assert kept == [[e for e in doc if e[3] >= cut] for doc in found]
    assert 0 < sum(map(len, kept)) < sum(map(len, found))


def test_the_threshold_is_a_probability():
    with pytest.raises(ValueError, match="threshold"):
        tiny_nlp(decoding={"threshold": 1.5})
