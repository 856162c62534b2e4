"""Long documents: windows within the model's context, entities mapped back once."""
import re

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_cllmfs.windows import split

from .util import tiny_nlp

NLP = spacy.blank("en")


def per_token(doc):
    """A counter in which every spaCy token is one model token."""
    starts = [t.idx for t in doc]
    return lambda a, b: sum(a <= s < b for s in starts)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 60), extra=st.integers(1, 15), overlap=st.integers(1, 4))
def test_windows_fit_and_hold_every_short_span(n, extra, overlap):
    # The component's budget is at least 4 x max_span_tokens (model tokens); here a window
    # holds more than two overlaps.
    budget = 2 * overlap + extra
    doc = NLP(" ".join(f"w{i}" for i in range(n)))
    windows = split(doc, budget, per_token(doc), overlap)
    assert all(end - start <= budget for start, end, _, _ in windows)
    assert windows[0][0] == 0 and windows[-1][1] == len(doc)
    # every span of fewer than `overlap` tokens lies whole inside some window, off its cuts
    for length in range(1, overlap):
        for start in range(len(doc) - length + 1):
            end = start + length
            assert any(
                s <= start and end <= e and not (cut_l and start == s) and not (cut_r and end == e)
                for s, e, cut_l, cut_r in windows
            ), (start, length, windows)


def test_sentences_are_packed_when_they_fit():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp("One two three. Four five six. Seven eight nine ten eleven twelve thirteen.")
    windows = split(doc, 8, per_token(doc), overlap=2)
    # the first two sentences (4 + 4 tokens) share a window; the third (8) gets its own
    assert windows == [(0, 8, False, False), (8, 16, False, False)]
    windows = split(doc, 6, per_token(doc), overlap=2)
    assert windows[:2] == [(0, 4, False, False), (4, 8, False, False)]  # sentences kept whole
    assert windows[2] == (8, 14, False, True) and windows[-1][1:] == (16, True, False)


def test_a_token_longer_than_the_budget_is_skipped():
    doc = NLP("a " + "x" * 50 + " b")
    count = lambda a, b: len(doc.text[a:b].replace(" ", ""))  # one model token per character
    assert [w[:2] for w in split(doc, 10, count, overlap=2)] == [(0, 1), (2, 3)]


def test_the_budget_comes_from_the_model():
    small, large = tiny_nlp(), tiny_nlp()
    for nlp, positions in ((small, 512), (large, 1024)):
        nlp.get_pipe("cllmfs_ner").base_model = spacy.registry.misc.get(
            "spacy_cllmfs.TinyLlama.v1")(max_positions=positions)
        nlp.initialize()
    budgets = [nlp.get_pipe("cllmfs_ner")._text_budget() for nlp in (small, large)]
    assert budgets[1] - budgets[0] == 512


def test_context_too_small_for_the_prompt_is_a_clear_error():
    nlp = tiny_nlp(max_new_tokens=1000)  # the tiny model has 1024 positions
    nlp.initialize()
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        nlp("Tim Cook.")


def test_long_document_entities_map_back_once(trained_nlp, monkeypatch):
    """A stand-in model finds every whole "Tim Cook" in each window it reads. Each mention
    comes out exactly once, at its place in the document, wherever the cuts fall."""
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    pipe._ensure_model()
    windows = pipe._windows
    seen = {}

    def recording_windows(docs):
        seen["units"] = windows(docs)
        return seen["units"]

    def fake_decode(texts, indexes):
        return [
            [(j, j + 2, "PERSON", 0.9) for j in range(len(u.part) - 1)
             if u.part[j].text == "Tim" and u.part[j + 1].text == "Cook"]
            for u in seen["units"]
        ]

    monkeypatch.setattr(pipe, "_windows", recording_windows)
    monkeypatch.setattr(pipe, "_decode", fake_decode)
    monkeypatch.setattr(pipe, "_text_budget", lambda: 45)
    text = " ".join(f"Tim Cook met w{i} ." for i in range(40))
    doc = trained_nlp(text)
    units = seen["units"]
    assert len(units) > 5
    assert all(u.encoded.text_end - u.encoded.text_start <= 45 + 2 for u in units)
    expected = [m.start() for m in re.finditer("Tim Cook", text)]
    assert [(e.start_char, e.text, e.label_) for e in doc.ents] == [
        (start, "Tim Cook", "PERSON") for start in expected
    ]


def test_long_document_on_the_tiny_model(trained_nlp, monkeypatch):
    """Real decoding over many windows of whole sentences: each copy of a sentence gets the
    entities the sentence gets alone."""
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    sentence = "Tim Cook said Apple will open an office in Lagos."
    alone = [(e.start_char, e.end_char, e.label_) for e in trained_nlp(sentence).ents]
    assert alone
    encoded = pipe._prompter.encode_text(sentence)
    one_sentence = encoded.text_end - encoded.text_start  # a window holds one, not two
    monkeypatch.setattr(pipe, "_text_budget", lambda: one_sentence + 2)
    doc = trained_nlp.make_doc(" ".join([sentence] * 12))
    for token in doc:
        token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    assert len(pipe._windows([doc])) == 12
    doc = pipe(doc)
    step = len(sentence) + 1
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
        (start + k * step, end + k * step, label) for k in range(12) for start, end, label in alone
    ]
