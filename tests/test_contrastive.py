import math

import pytest
import torch

from spacy_cllmfs.contrastive import default_layer, info_nce, pairs
from spacy_cllmfs.rows import Row, collate
from spacy_cllmfs.prompts import EncodedText, Layout

from .util import TRAIN, examples, tiny_nlp


def small_row(shift=0):
    # text "Ana met Bo today": 4 tokens at prompt positions 0..3 (+ shift), type name after them
    text = EncodedText(
        ids=(10, 11, 12, 13),
        offsets=((0, 3), (4, 7), (8, 10), (11, 16)),
        text_start=0,
        text_end=4,
    )
    return Row(text=text, label="PERSON", prompt=(), response=(), entities=[(8, 10)],
               layout=Layout(shift, shift + 4, shift + 4, shift + 5))


def test_pairs_pick_type_entity_and_neighbours():
    assert pairs([small_row()], window=1) == [(0, "PERSON", [4], [2], [1, 3])]
    assert pairs([small_row()], window=5) == [(0, "PERSON", [4], [2], [0, 1, 3])]
    # a prefix shifts every position
    assert pairs([small_row(shift=3)], window=1) == [(0, "PERSON", [7], [5], [4, 6])]


def test_the_pairs_of_real_prompts_point_at_the_type_name_and_the_entity():
    nlp = tiny_nlp()
    nlp.initialize(lambda: examples(nlp))
    pipe = nlp.get_pipe("cllmfs_ner")
    rows = pipe.training_rows(examples(nlp, TRAIN[:1]))
    decode = pipe.language_model.tokenizer.decode
    seen = set()
    for b, label, name, ent, negatives in pairs(rows, window=1):
        prompt = rows[b].prompt
        assert decode([prompt[i] for i in name]).strip() == rows[b].label == label
        seen.add((rows[b].label, decode([prompt[i] for i in ent]).strip()))
        assert all(i not in ent for i in negatives)
    assert seen == {("PERSON", "Tim Cook"), ("ORG", "Apple")}


def test_a_joint_rows_pairs_point_at_each_entitys_type_in_the_prefix():
    nlp = tiny_nlp(template="ner.v3")
    nlp.initialize(lambda: examples(nlp))
    pipe = nlp.get_pipe("cllmfs_ner")
    (row,) = pipe.training_rows(examples(nlp, TRAIN[:1]))
    decode = pipe.language_model.tokenizer.decode
    seen = set()
    for b, label, name, ent, negatives in pairs([row], window=1):
        assert max(name) < row.layout.text_start  # the prefix's list of types
        assert decode([row.prompt[i] for i in name]).strip() == label
        seen.add((label, decode([row.prompt[i] for i in ent]).strip()))
    assert seen == {("PERSON", "Tim Cook"), ("ORG", "Apple")}


def test_info_nce_by_hand():
    hidden = torch.zeros((1, 5, 2))
    hidden[0, 1] = torch.tensor([0.0, 1.0])   # left neighbour: cosine 0
    hidden[0, 2] = torch.tensor([2.0, 0.0])   # entity: cosine 1
    hidden[0, 3] = torch.tensor([-1.0, 0.0])  # right neighbour: cosine -1
    hidden[0, 4] = torch.tensor([1.0, 0.0])   # type name
    loss = info_nce(hidden, [small_row()], temperature=0.5, noise=0.0, window=1, training=True)
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(-2)))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_noise_only_in_training():
    torch.manual_seed(0)
    hidden = torch.randn((1, 5, 8))
    kwargs = dict(temperature=0.1, window=1)
    clean = info_nce(hidden, [small_row()], noise=0.0, training=True, **kwargs)
    eval_noisy = info_nce(hidden, [small_row()], noise=1.0, training=False, **kwargs)
    train_noisy = info_nce(hidden, [small_row()], noise=1.0, training=True,
                           generator=torch.Generator().manual_seed(1), **kwargs)
    assert float(eval_noisy) == float(clean)
    assert float(train_noisy) != pytest.approx(float(clean))


def test_no_entities_no_contrastive_term():
    row = small_row()
    row.entities = []
    assert info_nce(torch.zeros((1, 5, 2)), [row], temperature=1, noise=0, window=1,
                    training=True) is None


def test_default_layer_is_about_four_fifths():
    assert default_layer(32) == 26 and default_layer(30) == 24


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_weight_zero_leaves_cross_entropy_alone(weight):
    nlp = tiny_nlp(loss={"weight": weight})
    nlp.initialize(lambda: examples(nlp))
    loss, parts = nlp.get_pipe("cllmfs_ner").get_loss(examples(nlp))
    if weight == 0:
        assert "info_nce" not in parts and loss == pytest.approx(parts["cross_entropy"])
    else:
        expected = parts["cross_entropy"] + weight * parts["info_nce"]
        assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "key,value,message",
    [("temperature", 0.0, "loss.temperature must be greater than 0"),
     ("noise", -0.1, "loss.noise"), ("weight", -1.0, "loss.weight"),
     ("layer", 0, "loss.layer must be at least 1"),
     ("negative_window", 0, "loss.negative_window must be at least 1")],
)
def test_out_of_range_values_are_refused(key, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_nlp(loss={key: value})


def test_layer_beyond_depth_is_refused():
    nlp = tiny_nlp(loss={"layer": 9})  # the tiny model has 4 layers
    nlp.initialize(lambda: examples(nlp))
    with pytest.raises(ValueError, match="4 layers"):
        nlp.update(examples(nlp, TRAIN[:1]))


@pytest.mark.parametrize("layer", [1, 3])
def test_the_loss_uses_the_hidden_states_of_the_chosen_layer(layer):
    nlp = tiny_nlp(loss={"layer": layer, "weight": 1.0})
    nlp.initialize(lambda: examples(nlp))
    pipe = nlp.get_pipe("cllmfs_ner")
    _, parts = pipe.get_loss(examples(nlp))
    rows = pipe.training_rows(examples(nlp))
    batch = collate(rows, pipe.prompter.pad_id, "cpu")
    with torch.no_grad():
        hidden = pipe.language_model.lm(**batch, output_hidden_states=True).hidden_states
    expected = [  # one forward pass over whole rows, against passes.py's shared reading
        float(info_nce(hidden[k], rows, temperature=0.1, noise=0.1, window=2,
                       training=False, relative=True, cross_type=True))
        for k in range(len(hidden))
    ]
    assert parts["info_nce"] == pytest.approx(expected[layer], rel=1e-5)
    assert all(abs(parts["info_nce"] - v) > 1e-4 for k, v in enumerate(expected) if k != layer)


def test_cross_entropy_on_response_positions_equals_transformers_loss():
    nlp = tiny_nlp(loss={"weight": 0.0})
    nlp.initialize(lambda: examples(nlp))
    pipe = nlp.get_pipe("cllmfs_ner")
    loss, _ = pipe.get_loss(examples(nlp))
    batch = collate(pipe.training_rows(examples(nlp)), pipe.prompter.pad_id, "cpu")
    with torch.no_grad():
        full = pipe.language_model.lm(**batch).loss  # logits over every position
    assert loss == pytest.approx(float(full), rel=1e-5)
