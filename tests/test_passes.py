import pytest
import torch

from spacy_cllmfs import passes

from .util import LABELS, TINY, TRAIN, examples, tiny_nlp

SIX = {**LABELS, "LOC": "places", "DATE": "dates", "EVENT": "named events", "LAW": "laws"}


def ready(labels=LABELS, **config):
    nlp = tiny_nlp(labels, model={"base_model": TINY, "lora": {"dropout": 0.0}}, **config)
    nlp.initialize(lambda: examples(nlp))
    return nlp, nlp.get_pipe("cllmfs_ner")


def test_a_texts_rows_share_its_prompt_up_to_the_question():
    nlp, pipe = ready(SIX)
    rows = pipe.training_rows(examples(nlp))
    groups = passes.groups(rows)
    assert [len(g.rows) for g in groups] == [6, 6, 6]
    for g in groups:
        text = g.rows[0].text
        assert all(r.text is text for r in g.rows)
        assert all(r.prompt[: g.shared] == g.context for r in g.rows)
        # the shared part holds the whole text; the type name is each row's own
        assert g.shared >= g.rows[0].layout.text_end
        assert all(r.layout.name_start >= g.shared for r in g.rows)
        assert all(g.suffix(r) == r.prompt[g.shared:] + r.response for r in g.rows)
    # reading the text once per sentence costs fewer positions than once per row
    whole = sum(len(r.prompt) + len(r.response) for r in rows)
    assert sum(passes.cost([g]) for g in groups) < whole


def test_passes_respect_the_budget_and_keep_every_row_once_in_order():
    nlp, pipe = ready(SIX)
    rows = pipe.training_rows(examples(nlp))
    one = passes.cost(passes.groups(rows)[:1])
    for budget in (1, one // 2, one, 3 * one):
        plan = passes.plan(rows, budget)
        assert [r for p in plan for g in p for r in g.rows] == rows
        for p in plan:
            assert passes.cost(p) <= budget or (len(p) == 1 and len(p[0].rows) == 1)
    assert len(passes.plan(rows, 10 ** 9)) == 1
    assert len(passes.plan(rows, one // 2)) > len(rows) // 6


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_the_loss_does_not_depend_on_the_pass_budget(weight):
    # Other types' entities are negatives only within a pass: leave them out to compare.
    nlp, pipe = ready(SIX, loss={"weight": weight, "noise": 0.0, "cross_type_negatives": False})
    rows = pipe.training_rows(examples(nlp))
    lm = pipe.language_model.lm
    with torch.no_grad():
        whole, parts = pipe.loss(lm, rows, pipe.prompter.pad_id, training=False)
        split, split_parts = pipe.loss(lm, rows, pipe.prompter.pad_id, training=False,
                                       max_tokens=40)
    assert split_parts["passes"] > parts["passes"] == 1
    assert float(split) == pytest.approx(float(whole), rel=1e-5)
    for key in ("cross_entropy", "answer_rate", "answer_rate_gold") + (
            ("info_nce",) if weight else ()):
        assert split_parts[key] == pytest.approx(parts[key], rel=1e-5)


def grads_after_update(pass_tokens):
    torch.manual_seed(0)
    nlp, pipe = ready(SIX, loss={"noise": 0.0, "cross_type_negatives": False},
                      rows={"pass_tokens": pass_tokens})
    pipe.update(examples(nlp))  # no optimizer: the gradients stay on the parameters
    named = pipe.language_model.lm.named_parameters()
    return pipe, {name: p.grad.clone() for name, p in named if p.requires_grad}


def test_gradients_of_small_passes_add_up_to_those_of_one_pass():
    pipe_one, one = grads_after_update(10 ** 6)
    pipe_many, many = grads_after_update(40)
    assert pipe_many.update_log[-1]["passes"] > pipe_one.update_log[-1]["passes"] == 1
    assert one.keys() == many.keys() and one
    assert any(float(g.abs().sum()) > 0 for g in one.values())
    for name in one:
        torch.testing.assert_close(many[name], one[name], rtol=1e-4, atol=1e-5)


def test_each_update_is_logged_with_its_answer_rates():
    nlp, pipe = ready()
    nlp.update(examples(nlp))
    nlp.update(examples(nlp, TRAIN[1:]))
    first, second = pipe.update_log
    # TRAIN: 3 sentences x 2 types, 4 of the 6 rows have an entity; then 2 x 2, 2 of 4
    assert (first["rows"], second["rows"]) == (6, 4)
    assert first["answer_rate_gold"] == pytest.approx(4 / 6)
    assert second["answer_rate_gold"] == pytest.approx(2 / 4)
    assert 0.0 <= first["answer_rate"] <= 1.0
    assert first["loss"] > 0 and first["cross_entropy"] > 0


def test_pass_tokens_must_be_positive():
    with pytest.raises(ValueError, match="pass_tokens"):
        tiny_nlp(rows={"pass_tokens": 0})
