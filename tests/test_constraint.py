import pytest
import spacy
import torch

from spacy_cllmfs.constraint import SpanConstraint, build_span_index
from spacy_cllmfs.prompts import Prompter, Template
from spacy_cllmfs.testing import tiny_tokenizer


@pytest.fixture(scope="module")
def prompter():
    return Prompter(tiny_tokenizer(), Template.load("ner.v1"), {"PERSON": "people"})


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def run_random(constraint, rows, vocab, steps, seed):
    """Greedy decoding over random logits: the constraint alone keeps the output valid."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros((rows, 1), dtype=torch.long)
    for _ in range(steps):
        scores = torch.randn((rows, vocab), generator=generator) * 3
        masked = constraint(ids, scores)
        assert torch.isfinite(masked).any(dim=1).all()
        ids = torch.cat([ids, masked.argmax(dim=1, keepdim=True)], dim=1)
    constraint.finish(ids[:, 1:])
    return ids[:, 1:]


def test_index_holds_token_spans_without_edge_whitespace(nlp, prompter):
    doc = nlp("Tim  Cook met\nAna.")
    index = build_span_index(doc, prompter, max_span_tokens=3)
    spans = {s for occ in index.occurrences.values() for s in occ}
    # "Tim  Cook" is Tim, a space token, Cook: no span may end or start on the space.
    assert (0, 1) in spans and (0, 3) in spans and (0, 2) not in spans and (1, 3) not in spans
    assert all(not doc[s].is_space and not doc[e - 1].is_space for s, e in spans)
    assert all(e - s <= 3 for s, e in spans)
    for ids, occ in index.occurrences.items():
        texts = {doc[s:e].text for s, e in occ}
        assert len(texts) == 1 and prompter.encode_spans(list(texts)) == [ids]


def test_empty_doc_only_allows_the_end(nlp, prompter):
    index = build_span_index(nlp(""), prompter, 4)
    constraint = SpanConstraint([index], ["PERSON"], prompter)
    masked = constraint(torch.zeros((1, 1), dtype=torch.long), torch.zeros((1, 600)))
    assert torch.isfinite(masked[0]).nonzero().flatten().tolist() == [prompter.eos_id]


@pytest.mark.parametrize("seed", range(20))
def test_random_logits_give_only_document_spans(nlp, prompter, seed):
    doc = nlp("Ana met Bo and Ana met Cy in Oslo, then Ana left.")
    index = build_span_index(doc, prompter, max_span_tokens=3)
    constraint = SpanConstraint([index, index], ["PERSON", "ORG"], prompter)
    run_random(constraint, 2, len(prompter.tokenizer), steps=80, seed=seed)
    for row, label in enumerate(["PERSON", "ORG"]):
        found = constraint.entities(row)
        spans = [(e.start, e.end) for e in found]
        assert len(spans) == len(set(spans)), "an occurrence was used twice"
        for entity in found:
            assert entity.label == label
            assert 0 <= entity.start < entity.end <= len(doc) and entity.end - entity.start <= 3
            assert 0 < entity.score <= 1


def test_kth_generated_mention_is_kth_occurrence(nlp, prompter):
    doc = nlp("Ana met Bo and Ana met Cy.")
    index = build_span_index(doc, prompter, max_span_tokens=2)
    (ana,) = prompter.encode_spans(["Ana"])
    forced = list(prompter.open_ids + ana + prompter.close_ids) * 3 + [prompter.eos_id]
    constraint = SpanConstraint([index], ["PERSON"], prompter)
    ids = torch.zeros((1, 1), dtype=torch.long)
    generated = []
    for token in forced:
        scores = torch.zeros((1, len(prompter.tokenizer)))
        scores[0, token] = 10.0
        generated.append(int(constraint(ids, scores).argmax()))
        ids = torch.cat([ids, torch.tensor([[generated[-1]]])], dim=1)
    constraint.finish(ids[:, 1:])
    # "Ana" occurs twice: the third attempt cannot close, so the model is steered elsewhere.
    assert [(e.start, e.end) for e in constraint.entities(0)][:2] == [(0, 1), (4, 5)]
    assert all(doc[e.start : e.end].text != "Ana" for e in constraint.entities(0)[2:])


def test_end_is_allowed_everywhere(nlp, prompter):
    doc = nlp("Ana met Bo.")
    index = build_span_index(doc, prompter, 2)
    constraint = SpanConstraint([index], ["PERSON"], prompter)
    ids = torch.zeros((1, 1), dtype=torch.long)
    for _ in range(12):
        scores = torch.randn((1, len(prompter.tokenizer)))
        scores[0, prompter.eos_id] = -1e4  # the model never wants to stop
        masked = constraint(ids, scores)
        assert torch.isfinite(masked[0, prompter.eos_id])
        ids = torch.cat([ids, masked.argmax(dim=1, keepdim=True)], dim=1)


def test_cut_off_entity_is_not_written(nlp, prompter):
    doc = nlp("Ana Bo met.")
    index = build_span_index(doc, prompter, 2)
    (ana_bo,) = prompter.encode_spans(["Ana Bo"])
    constraint = SpanConstraint([index], ["PERSON"], prompter)
    forced = list(prompter.open_ids + ana_bo)  # no closing delimiter: the budget ran out
    ids = torch.zeros((1, 1), dtype=torch.long)
    for token in forced:
        scores = torch.zeros((1, len(prompter.tokenizer)))
        scores[0, token] = 10.0
        ids = torch.cat([ids, constraint(ids, scores).argmax(dim=1, keepdim=True)], dim=1)
    constraint.finish(ids[:, 1:])
    assert constraint.entities(0) == []


def test_the_score_holds_the_decision_to_answer_and_the_span(nlp, prompter):
    """Drive one entity token by token with known logits: the score is P(open | open or
    end) x the geometric mean probability of the span and close tokens."""
    doc = nlp("Ana met Bo.")
    index = build_span_index(doc, prompter, max_span_tokens=1)
    constraint = SpanConstraint([index], ["PERSON"], prompter)
    span = prompter.encode_spans(["Ana"])[0]
    planned = list(prompter.open_ids) + list(span) + list(prompter.close_ids)
    vocab = len(prompter.tokenizer)
    logps = []
    ids = torch.zeros((1, 1), dtype=torch.long)
    for step, token in enumerate(planned):
        scores = torch.zeros((1, vocab))
        scores[0, token] = 2.0 + step  # the planned token wins, with a known probability
        if step == 0:
            scores[0, prompter.eos_id] = 1.0
            p = torch.softmax(scores[0], -1)
            decision = float(p[token] / (p[token] + p[prompter.eos_id]))
        elif step >= len(prompter.open_ids):
            logps.append(float(torch.log_softmax(scores[0], -1)[token]))
        masked = constraint(ids, scores)
        assert int(masked.argmax()) == token
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    constraint(ids, torch.zeros((1, vocab)))  # the step that sees the last token
    (entity,) = constraint.entities(0)
    assert (entity.start, entity.end) == (0, 1)
    expected = decision * float(torch.tensor(sum(logps) / len(logps)).exp())
    assert entity.score == pytest.approx(expected, rel=1e-5)
    assert entity.score < decision


@pytest.mark.parametrize("threshold,opens", [(0.5, False), (0.35, False), (0.25, True), (0.1, True)])
def test_answer_threshold_decides_between_opening_and_ending(nlp, prompter, threshold, opens):
    """The model gives opening an entity 0.3 of the mass of the two choices: greedy (0.5) ends
    the answer, a threshold under 0.3 opens an entity; the recorded score stays the model's."""
    index = build_span_index(nlp("Ana met Bo."), prompter, 3)
    constraint = SpanConstraint([index], ["PERSON"], prompter, answer_threshold=threshold)
    scores = torch.full((1, len(prompter.tokenizer)), -5.0)
    scores[0, prompter.open_ids[0]] = float(torch.tensor(0.3).log())
    scores[0, prompter.eos_id] = float(torch.tensor(0.7).log())
    choice = int(constraint(torch.zeros((1, 1), dtype=torch.long), scores).argmax())
    assert choice == (prompter.open_ids[0] if opens else prompter.eos_id)
    constraint.consume(torch.tensor([choice]))
    if opens:
        assert constraint.seqs[0].decision == pytest.approx(float(torch.tensor(0.3).log()),
                                                            abs=1e-5)
    with pytest.raises(ValueError, match="answer_threshold must be between 0 and 1"):
        SpanConstraint([index], ["PERSON"], prompter, answer_threshold=1.0)


def test_a_joint_row_writes_each_entity_under_a_type_name():
    """ner.v3: one row per document; the opening names the type, the entity takes it."""
    from spacy_cllmfs.prompts import ALL_TYPES

    labels = {"PERSON": "people", "ORG": "companies"}
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v3"), labels)
    doc = spacy.blank("en")("Ana met Bo at Acme.")
    index = build_span_index(doc, prompter, 2)
    ana, acme = prompter.encode_spans(["Ana", "Acme"])
    forced = (list(prompter.open_for("PERSON") + ana + prompter.close_ids)
              + list(prompter.open_for("ORG") + acme + prompter.close_ids) + [prompter.eos_id])
    constraint = SpanConstraint([index], [ALL_TYPES], prompter)
    ids = torch.zeros((1, 1), dtype=torch.long)
    for token in forced:
        scores = torch.zeros((1, len(prompter.tokenizer)))
        scores[0, token] = 10.0
        masked = constraint(ids, scores)
        assert int(masked.argmax()) == token
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    constraint.finish(ids[:, 1:])
    assert [(e.label, e.start, e.end) for e in constraint.entities(0)] == [
        ("PERSON", 0, 1), ("ORG", 4, 5)]


def test_a_joint_row_cannot_write_an_unknown_type():
    from spacy_cllmfs.prompts import ALL_TYPES

    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v3"), {"PERSON": "people"})
    index = build_span_index(spacy.blank("en")("Ana met Bo."), prompter, 2)
    constraint = SpanConstraint([index], [ALL_TYPES], prompter)
    vocab = len(prompter.tokenizer)
    run_random(constraint, 1, vocab, 40, seed=0)
    assert all(e.label == "PERSON" for e in constraint.entities(0))
    # the type's opening is the only way in: every other first token is masked
    fresh = SpanConstraint([index], [ALL_TYPES], prompter)
    masked = fresh(torch.zeros((1, 1), dtype=torch.long), torch.zeros((1, vocab)))
    allowed = torch.isfinite(masked[0]).nonzero()[:, 0].tolist()
    assert allowed == sorted({prompter.open_for("PERSON")[0], prompter.eos_id})


def test_openings_that_cannot_be_told_apart_are_an_error():
    from spacy_cllmfs.constraint import opening_trie

    assert opening_trie({"A": (1, 2), "B": (1, 3)}) == {1: {2: {-2: "A"}, 3: {-2: "B"}}}
    with pytest.raises(ValueError, match="'A'"):
        opening_trie({"A": (1, 2), "B": (1, 2)})
    with pytest.raises(ValueError, match="begins"):
        opening_trie({"A": (1, 2), "B": (1, 2, 3)})
    with pytest.raises(ValueError, match="begins"):
        opening_trie({"B": (1, 2, 3), "A": (1, 2)})


def test_indexes_built_together_equal_those_built_one_by_one(nlp, prompter):
    """The pipeline tokenizes the spans of a whole batch of documents in one call."""
    from spacy_cllmfs.constraint import build_span_indexes

    docs = [nlp(t) for t in ("Ana met Bo and Ana.", "", "Bo met Cy  in Oslo.", "Ana")]
    together = build_span_indexes(docs, prompter, 3)
    assert len(together) == len(docs)
    for doc, index in zip(docs, together):
        alone = build_span_index(doc, prompter, 3)
        assert index.trie == alone.trie and index.occurrences == alone.occurrences
    assert together[1].trie == {} and together[0].occurrences != together[2].occurrences
