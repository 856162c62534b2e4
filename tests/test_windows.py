"""Long documents: windows of about a sentence, entities mapped back once."""
import dataclasses
import logging
import re

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_cllmfs import windows
from spacy_cllmfs.constraint import Entity
from spacy_cllmfs.decoders import DecoderSettings
from spacy_cllmfs.windows import split

from . import util
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
    budgets = []
    for positions in (512, 1024):
        nlp = tiny_nlp(base_model={"max_positions": positions})
        nlp.initialize()
        budgets.append(windows.text_budget(
            nlp.get_pipe("cllmfs_ner").language_model.context, nlp.get_pipe("cllmfs_ner").prompter,
            max_new_tokens=64, max_span_tokens=8,
        ))
    assert budgets[1] - budgets[0] == 512


def test_context_too_small_for_the_prompt_is_a_clear_error():
    nlp = tiny_nlp(decoding={"max_new_tokens": 1000})  # the tiny model has 1024 positions
    nlp.initialize()
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        nlp("Tim Cook.")


class Decoding:
    max_new_tokens, max_span_tokens = 4, 3


def test_entities_map_back_once_wherever_the_cuts_fall(trained_nlp):
    """A stand-in decoder finds every whole "Tim Cook" in each window it reads. Each mention
    comes out exactly once, at its place in the document; fragments at cuts are dropped."""
    prompter = trained_nlp.get_pipe("cllmfs_ner").prompter
    text = " ".join(f"Tim Cook met w{i} ." for i in range(40))
    doc = trained_nlp.make_doc(text)
    context = windows.prompt_overhead(prompter, Decoding.max_new_tokens) + 45
    units = windows.units([doc], prompter, context, Decoding)
    assert len(units) > 5
    assert all(u.encoded.text_end - u.encoded.text_start <= 45 for u in units)
    found = []
    for u in units:
        hits = [Entity("PERSON", j, j + 2, 0.9) for j in range(len(u.part) - 1)
                if u.part[j].text == "Tim" and u.part[j + 1].text == "Cook"]
        # a fragment at each cut: "Cook" at a left cut, "Tim" at a right cut
        hits += [Entity("PERSON", 0, 1, 0.95)] if u.cut_left else []
        hits += [Entity("PERSON", len(u.part) - 1, len(u.part), 0.95)] if u.cut_right else []
        found.append(hits)
    (merged,) = windows.merge(units, found, 1)
    expected = [m.start() for m in re.finditer("Tim Cook", text)]
    assert sorted(doc[e.start : e.end].start_char for e in merged) == expected
    assert all(doc[e.start : e.end].text == "Tim Cook" and e.score == 0.9 for e in merged)


def test_merge_keeps_the_best_score_of_a_span_seen_twice():
    doc = NLP("a b c d e f")
    units = [windows.Unit(0, 0, doc[0:4], None, False, True),
             windows.Unit(0, 2, doc[2:6], None, True, False)]
    found = [[Entity("ORG", 2, 3, 0.4)], [Entity("ORG", 0, 1, 0.4), Entity("ORG", 1, 2, 0.7)]]
    # window 2's (0, 1) touches its left cut: dropped; (1, 2) is doc token 3
    assert windows.merge(units, found, 1) == [[Entity("ORG", 2, 3, 0.4), Entity("ORG", 3, 4, 0.7)]]
    found = [[Entity("ORG", 2, 3, 0.4)], [Entity("ORG", 1, 2, 0.7)]]
    units[1] = windows.Unit(0, 1, doc[1:5], None, False, False)
    assert windows.merge(units, found, 1) == [[Entity("ORG", 2, 3, 0.7)]]


def test_long_document_on_the_tiny_model(trained_nlp, tmp_path):
    """Real decoding over many windows of whole sentences, on a model whose context holds one
    sentence: each copy of a sentence gets the entities the sentence gets alone."""
    sentence = "Tim Cook said Apple will open an office in Lagos."
    alone = [(e.start_char, e.end_char, e.label_) for e in trained_nlp(sentence).ents]
    assert alone
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    prompter = pipe.prompter
    encoded = prompter.encode_text(sentence)
    one_sentence = encoded.text_end - encoded.text_start  # a window holds one, not two
    positions = windows.prompt_overhead(prompter, pipe.decoding.max_new_tokens) + one_sentence + 2
    trained_nlp.to_disk(tmp_path)
    # max_span_tokens 6 (the entities here are shorter): the window check wants 4 x 6 <= 27.
    short = spacy.load(tmp_path, config={"components": {"cllmfs_ner": {
        "model": {"base_model": {"max_positions": positions}}, "decoding": {"max_span_tokens": 6}}}})
    doc = short.make_doc(" ".join([sentence] * 12))
    for token in doc:
        token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    short_pipe = short.get_pipe("cllmfs_ner")
    assert len(windows.units([doc], short_pipe.prompter, positions, short_pipe.decoding)) == 12
    doc = short_pipe(doc)
    step = len(sentence) + 1
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
        (start + k * step, end + k * step, label) for k in range(12) for start, end, label in alone
    ]


def sentence_ents(nlp, sentences):
    """The entities of each sentence run alone, as (start_char, end_char, label) shifted to
    where the sentence starts in the sentences joined by single spaces."""
    found, at = [], 0
    for doc in nlp.pipe(sentences):
        found += [(e.start_char + at, e.end_char + at, e.label_) for e in doc.ents]
        at += len(doc.text) + 1
    return found


@pytest.mark.parametrize("sentencizer", [True, False])
def test_a_document_finds_what_its_sentences_find(trained_nlp, sentencizer):
    """A document of many sentences is read in windows of a sentence each (marked by a
    sentencizer, or found by spaCy's rules when nothing marks them): every entity its
    sentences find alone, at its exact place in the document."""
    sentences = [text for text, _ in util.TRAIN + util.UNSEEN] * 8
    alone = sentence_ents(trained_nlp, sentences)
    assert len(alone) >= 24  # the tiny model finds entities in most sentences
    text = " ".join(sentences)
    doc = trained_nlp.make_doc(text)
    if sentencizer:
        doc = spacy.blank("en").add_pipe("sentencizer")(doc)
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    assert len(windows.units([doc], pipe.prompter, None, pipe.decoding)) == len(sentences)
    doc = pipe(doc)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == alone
    assert all(e.text == text[e.start_char : e.end_char] for e in doc.ents)
    assert doc.has_annotation("SENT_START") == sentencizer  # the guess is not written


def test_window_tokens_zero_reads_a_document_that_fits_whole(trained_nlp):
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    doc = spacy.blank("en").add_pipe("sentencizer")(trained_nlp.make_doc(
        " ".join(text for text, _ in util.TRAIN)))
    settings = dataclasses.replace(pipe.decoding, window_tokens=0)
    assert len(windows.units([doc], pipe.prompter, None, settings)) == 1
    assert len(windows.units([doc], pipe.prompter, None, pipe.decoding)) == len(util.TRAIN)


def test_unmarked_text_without_sentence_ends_is_read_in_token_windows(trained_nlp):
    """No sentence boundaries and no sentence-final punctuation: overlapping token windows
    of at most window_tokens model tokens."""
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    prompter = pipe.prompter
    doc = trained_nlp.make_doc(" ".join(f"Tim Cook met w{i}" for i in range(40)))
    settings = dataclasses.replace(pipe.decoding, window_tokens=40, max_span_tokens=4)
    units = windows.units([doc], prompter, None, settings)
    assert len(units) > 5
    assert all(u.encoded.text_end - u.encoded.text_start <= 40 for u in units)
    assert units[0].cut_right and units[-1].cut_left


@pytest.mark.parametrize("value", [-1, 8, 31, 2.5, True])
def test_window_tokens_is_checked(value):
    with pytest.raises(ValueError, match="window_tokens"):
        DecoderSettings(window_tokens=value)  # max_span_tokens 8: at least 32
    assert DecoderSettings(window_tokens=0).window_tokens == 0


def test_answers_cut_at_max_new_tokens_are_counted_and_logged(trained_nlp, caplog):
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    default = pipe.decoding
    pipe.decoding = dataclasses.replace(default, max_new_tokens=2)
    try:
        with caplog.at_level(logging.WARNING, logger="spacy_cllmfs"):
            trained_nlp(util.TRAIN[0][0])
            cut = pipe.decode_stats.cut_off
    finally:
        pipe.decoding = default
    assert cut > 0
    assert "reached decoding.max_new_tokens (2)" in caplog.text
    assert caplog.text.count("reached decoding.max_new_tokens") == 1  # once per batch
