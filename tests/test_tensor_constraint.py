"""The tensor span constraint makes SpanConstraint's choices, step by step, for whole batches."""
import pytest
import spacy
import torch

from spacy_cllmfs.constraint import SpanConstraint, build_span_index
from spacy_cllmfs.prompts import ALL_TYPES, Prompter, Template
from spacy_cllmfs.tensor_constraint import FlatTrie, TensorConstraint
from spacy_cllmfs.testing import tiny_tokenizer

# Written for these tests: repeated mentions, several spans per token, nothing to extract.
TEXTS = [
    "Ana met Bo and Ana met Cy in Oslo, then Ana left.",
    "Acme Labs hired Bo Lee; Bo Lee left Acme Labs.",
    "   ",
    "Oslo",
]


def both(template, labels, answer_threshold=0.5):
    prompter = Prompter(tiny_tokenizer(), Template.load(template), labels)
    nlp = spacy.blank("en")
    indexes = [build_span_index(nlp(text), prompter, 3) for text in TEXTS]
    keys = prompter.keys(list(labels))
    rows = [(index, key) for index in indexes for key in keys]
    args = ([i for i, _ in rows], [k for _, k in rows], prompter, answer_threshold)
    return prompter, SpanConstraint(*args), TensorConstraint(*args)


def decode_both(python, tensor, scores_at, steps):
    """Greedy steps under each constraint on the same scores; rows that end leave the batch,
    as in the cached decoder. Returns the tokens each chose, step by step."""
    active = list(range(len(python.seqs)))
    rows = torch.arange(len(active))
    n_edges = int(tensor.edges(rows).sum())
    chosen = []
    for step in range(steps):
        scores = scores_at(step, len(active))
        by_python = python.masked(active, scores).argmax(dim=-1)
        python.consume(by_python)
        by_tensor, after = tensor.step(rows, scores, n_edges)
        chosen.append((by_python.tolist(), by_tensor.tolist()))
        keep = [k for k, row in enumerate(active) if not python.done(row)]
        assert [a >= 0 for a in after.tolist()] == [not python.done(r) for r in active]
        if not keep:
            break
        active = [active[k] for k in keep]
        rows = rows[torch.tensor(keep)]
        n_edges = int(after[torch.tensor(keep)].sum())
    return chosen


def same_entities(python, tensor):
    found = tensor.entities()
    for row in range(len(python.seqs)):
        expected = python.entities(row)
        assert [e[:3] for e in found[row]] == [e[:3] for e in expected]
        assert [e.score for e in found[row]] == pytest.approx([e.score for e in expected],
                                                              rel=1e-5)
    return found


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("template,labels,answer_threshold", [
    ("ner.v1", {"PERSON": "people", "ORG": "companies"}, 0.5),
    ("ner.v1", {"PERSON": "people"}, 0.2),
    ("ner.v3", {"PERSON": "people", "ORG": "companies", "GPE": "places"}, 0.5),
])
def test_random_scores_give_the_same_choices_and_entities(template, labels, answer_threshold,
                                                          seed):
    prompter, python, tensor = both(template, labels, answer_threshold)
    generator = torch.Generator().manual_seed(seed)
    vocab = len(prompter.tokenizer)

    def scores_at(step, rows):
        scores = torch.randn((rows, vocab), generator=generator) * 3
        scores[:, prompter.eos_id] -= 8.0  # long answers: many entities, repeated strings
        return scores

    chosen = decode_both(python, tensor, scores_at, steps=60)
    assert all(p == t for p, t in chosen)
    found = same_entities(python, tensor)
    assert sum(map(len, found)) > 0, "the scores should open entities"


def test_ties_go_to_the_lower_token_as_argmax_does():
    prompter, python, tensor = both("ner.v1", {"PERSON": "people", "ORG": "companies"})
    vocab = len(prompter.tokenizer)
    chosen = decode_both(python, tensor, lambda step, rows: torch.zeros((rows, vocab)), 40)
    assert all(p == t for p, t in chosen)
    same_entities(python, tensor)


def test_a_string_closes_at_most_as_often_as_the_document_holds_it():
    """"Ana" occurs three times in the first text: forced to repeat it, a row writes it three
    times, the k-th time as the k-th occurrence, and then cannot close it again."""
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v1"), {"PERSON": "people"})
    index = build_span_index(spacy.blank("en")(TEXTS[0]), prompter, 3)
    (ana,) = prompter.encode_spans(["Ana"])
    writes = list(prompter.open_for("PERSON") + ana + prompter.close_ids)
    tensor = TensorConstraint([index], ["PERSON"], prompter)
    vocab = len(prompter.tokenizer)
    rows = torch.arange(1)
    n_edges = int(tensor.edges(rows).sum())
    for repeat in range(4):
        for position, token in enumerate(writes):
            scores = torch.zeros((1, vocab))
            scores[0, token] = 10.0
            chosen, after = tensor.step(rows, scores, n_edges)
            if repeat == 3 and position == len(writes) - 1:
                assert int(chosen[0]) != token  # a fourth "Ana" cannot close
            else:
                assert int(chosen[0]) == token
            n_edges = int(after[0])
    assert [(e.start, e.end) for e in tensor.entities()[0]] == [(0, 1), (4, 5), (11, 12)]


def test_a_joint_row_writes_each_entity_under_its_type():
    labels = {"PERSON": "people", "ORG": "companies"}
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v3"), labels)
    index = build_span_index(spacy.blank("en")("Ana met Bo at Acme."), prompter, 2)
    ana, acme = prompter.encode_spans(["Ana", "Acme"])
    forced = (list(prompter.open_for("PERSON") + ana + prompter.close_ids)
              + list(prompter.open_for("ORG") + acme + prompter.close_ids) + [prompter.eos_id])
    tensor = TensorConstraint([index], [ALL_TYPES], prompter)
    rows = torch.arange(1)
    n_edges = int(tensor.edges(rows).sum())
    for token in forced:
        scores = torch.zeros((1, len(prompter.tokenizer)))
        scores[0, token] = 10.0
        chosen, after = tensor.step(rows, scores, n_edges)
        assert int(chosen[0]) == token
        n_edges = max(0, int(after[0]))
    assert int(after[0]) == -1, "the end token ends the answer"
    assert [e[:3] for e in tensor.entities()[0]] == [("PERSON", 0, 1), ("ORG", 4, 5)]


def test_more_types_than_the_document_has_strings():
    """One extractable string, three types: a type's number is never taken for a string's."""
    labels = {"PERSON": "people", "ORG": "companies", "GPE": "places"}
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v1"), labels)
    index = build_span_index(spacy.blank("en")("Oslo"), prompter, 3)
    args = ([index] * 3, list(labels), prompter)
    python, tensor = SpanConstraint(*args), TensorConstraint(*args)
    vocab = len(prompter.tokenizer)

    def scores_at(step, rows):  # every token but the end ties: the lowest allowed id wins
        scores = torch.ones((rows, vocab))
        scores[:, prompter.eos_id] = 0.0
        return scores

    chosen = decode_both(python, tensor, scores_at, 20)
    assert all(p == t for p, t in chosen)
    assert [[e[:3] for e in row] for row in same_entities(python, tensor)] == [
        [("PERSON", 0, 1)], [("ORG", 0, 1)], [("GPE", 0, 1)]]


def test_a_document_without_spans_can_only_end():
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v1"), {"PERSON": "people"})
    index = build_span_index(spacy.blank("en")("  "), prompter, 3)
    tensor = TensorConstraint([index], ["PERSON"], prompter)
    rows = torch.arange(1)
    assert tensor.edges(rows).tolist() == [0]
    scores = torch.zeros((1, len(prompter.tokenizer)))
    scores[0, 5] = 100.0
    chosen, after = tensor.step(rows, scores, 0)
    assert chosen.tolist() == [prompter.eos_id] and after.tolist() == [-1]
    assert tensor.entities() == [[]]


def test_a_flat_trie_keeps_every_path():
    trie = {1: {2: {-1: (1,)}, 3: {4: {-1: (1, 3)}}}, 5: {-1: (5,)}}
    flat = FlatTrie.of(trie, -1)
    paths = {}

    def walk(node, path):
        if flat.mark[node] is not None:
            paths[tuple(path)] = flat.mark[node]
        for e in range(int(flat.first[node]), int(flat.first[node] + flat.count[node])):
            walk(int(flat.child[e]), path + [int(flat.token[e])])

    walk(0, [])
    assert paths == {(1, 2): (1,), (1, 3, 4): (1, 3), (5,): (5,)}
