"""Training rows: which types a sentence is asked about, under which names, in both layouts."""
import random

import pytest
import spacy
from spacy.tokens import Doc

from spacy_cllmfs.prompts import Prompter, Template
from spacy_cllmfs.rows import TYPES_KEY, RowSettings, TypeInfo, build_rows, row_settings, surface
from spacy_cllmfs.testing import tiny_tokenizer

LABELS = {"PERSON": "names of people", "ORG": "companies and institutions"}
# A corpus's own types (invented for this test), as convert_source.py stores them.
TYPES = {
    "Organ": {"description": "organs of the body", "names": ["organ", "body organ"]},
    "Cell": {"description": "cells and cell types", "names": ["cell"]},
    "Tissue": {"description": "tissues", "names": ["tissue"]},
    "Fluid": {"description": "substances of the body", "names": ["bodily fluid"]},
}


def make_doc(words, ents, types=TYPES):
    doc = Doc(spacy.blank("en").vocab, words=words, ents=ents)
    if types is not None:
        doc.user_data[TYPES_KEY] = types
    return doc


@pytest.fixture(scope="module", params=["ner.v1", "ner.v2"])
def prompter(request):
    return Prompter(tiny_tokenizer(), Template.load(request.param), LABELS)


def decode(prompter, ids):
    return prompter.tokenizer.decode(list(ids))


def test_default_rows_ask_every_label_with_the_components_prompt(prompter):
    doc = make_doc(["Tim", "Cook", "spoke", "."], ["B-PERSON", "I-PERSON", "O", "O"], types=None)
    rows = build_rows([doc], prompter, LABELS)
    assert [r.label for r in rows] == ["PERSON", "ORG"]
    text = prompter.encode_text(doc.text)
    for row in rows:
        assert row.prompt == prompter.prompt_ids(text, row.label)
        assert row.layout == prompter.layout(text, row.label)
    assert rows[0].entities == [(0, 8)] and rows[1].entities == []
    assert rows[1].response == (prompter.eos_id,)


def test_a_docs_own_types_and_sampled_absent_ones(prompter):
    doc = make_doc(["Heart", "cells", "grow"], ["B-Organ", "O", "O"])
    empty = make_doc(["Nothing", "here"], ["O", "O"])
    settings = RowSettings(absent_types=2)
    seen = set()
    for seed in range(20):
        rows = build_rows([doc, empty], prompter, LABELS, settings, random.Random(seed))
        first = [r.label for r in rows if r.text.ids == prompter.encode_text(doc.text).ids]
        second = [r.label for r in rows if r.text.ids == prompter.encode_text(empty.text).ids]
        # the present type always, two absent ones, all from the doc's own types (not LABELS)
        assert "Organ" in first and len(first) == 3 and set(first) <= set(TYPES)
        # an entity-free sentence is kept: asked two absent types, both answered "none"
        assert len(second) == 2 and set(second) <= set(TYPES)
        seen.update(first)
        for row in rows:
            if row.label == "Organ" and row.text.ids == prompter.encode_text(doc.text).ids:
                assert row.entities == [(0, 5)]
            else:
                assert row.entities == [] and row.response == (prompter.eos_id,)
    assert seen == set(TYPES)  # the absent types are sampled, not fixed


def test_absent_types_at_least_the_absent_ones_ask_every_type_and_draw_nothing(prompter):
    """With no more absent types than `absent_types`, the rows are those of asking every type,
    and the random stream is left as it was (training on few types is as without sampling)."""
    doc = make_doc(["Heart", "cells"], ["B-Organ", "O"])
    rng = random.Random(0)
    rows = build_rows([doc], prompter, LABELS, RowSettings(absent_types=len(TYPES) - 1), rng)
    every = build_rows([doc], prompter, LABELS, RowSettings(absent_types=None))
    assert [(r.label, r.prompt, r.response) for r in rows] == \
        [(r.label, r.prompt, r.response) for r in every]
    assert rng.random() == random.Random(0).random()
    rows = build_rows([doc], prompter, LABELS, RowSettings(absent_types=len(TYPES) - 2), rng)
    assert len(rows) == len(TYPES) - 1 and "Organ" in [r.label for r in rows]


def test_absent_types_none_asks_every_type_of_the_doc(prompter):
    doc = make_doc(["Heart", "cells"], ["B-Organ", "B-Cell"])
    rows = build_rows([doc], prompter, LABELS, RowSettings(absent_types=0))
    assert sorted(r.label for r in rows) == ["Cell", "Organ"]
    rows = build_rows([doc], prompter, LABELS, RowSettings(absent_types=None))
    assert [r.label for r in rows] == list(TYPES)


def test_varied_names_keep_the_gold_and_mark_the_shown_name(prompter):
    doc = make_doc(["Heart", "cells"], ["B-Organ", "B-Cell"])
    shown = set()
    for seed in range(40):
        rows = build_rows([doc], prompter, LABELS, RowSettings(0, vary_names=True),
                          random.Random(seed))
        for row in rows:
            name = decode(prompter, row.prompt[row.layout.name_start : row.layout.name_end])
            shown.add((row.label, name.strip()))
            # the text sits where the layout says, whatever the prefix lists
            text = decode(prompter, row.prompt[row.layout.text_start : row.layout.text_end])
            assert text == doc.text
            assert row.entities == ([(0, 5)] if row.label == "Organ" else [(6, 11)])
    organ = {name for label, name in shown if label == "Organ"}
    assert {"Organ", "organ", "body organ", "organs of the body"} <= organ
    assert any(name.isupper() for name in organ)  # sometimes another case
    assert {name for label, name in shown if label == "Cell"} >= {"Cell", "cell"}


def test_varied_descriptions_show_the_description_its_paraphrase_or_the_name_alone():
    info = TypeInfo("organs of the body", ("organ",), paraphrase="an organ, such as the heart")
    rng = random.Random(0)
    drawn = [surface("Organ", info, rng, vary_names=False, vary_descriptions=True)
             for _ in range(400)]
    assert {name for name, _ in drawn} == {"Organ"}  # the name itself is not varied
    counts = {d: sum(1 for _, x in drawn if x == d)
              for d in ("organs of the body", "an organ, such as the heart", "Organ")}
    assert sum(counts.values()) == 400
    assert 160 < counts["organs of the body"] < 240  # about half
    assert 70 < counts["an organ, such as the heart"] < 130  # about a quarter each
    assert 70 < counts["Organ"] < 130
    # without a paraphrase, that quarter keeps the description; never an empty one
    bare = TypeInfo("organs of the body", ("organ",))
    assert {d for _, d in (surface("Organ", bare, rng, False, True) for _ in range(100))} == {
        "organs of the body", "Organ"}
    # the description alone as the name stays itself; off, nothing varies
    for _ in range(200):
        name, description = surface("Organ", info, rng, True, True)
        assert description != "" and (name != "organs of the body" or description == name)
    assert surface("Organ", info, rng, False, False) == ("Organ", "organs of the body")


def test_rows_ask_with_the_paraphrase_from_a_docs_own_types(prompter):
    types = {label: {**info, "paraphrase": f"PARA {label}"} for label, info in TYPES.items()}
    doc = make_doc(["Heart", "cells"], ["B-Organ", "B-Cell"], types)
    prompts = set()
    for seed in range(30):
        for row in build_rows([doc], prompter, LABELS, RowSettings(0, vary_descriptions=True),
                              random.Random(seed)):
            prompts.add(decode(prompter, row.prompt))
            assert row.entities == ([(0, 5)] if row.label == "Organ" else [(6, 11)])
    assert any("PARA Organ" in p for p in prompts) and any("organs of the body" in p for p in prompts)
    assert row_settings(vary_descriptions=True).vary_descriptions


def test_layout_b_lists_the_asked_types_once_in_the_prefix():
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v2"), LABELS)
    prefix = decode(prompter, prompter.prefix_ids)
    assert "- PERSON: names of people\n- ORG: companies and institutions\n" in prefix
    question = decode(prompter, prompter.questions["ORG"].ids)
    assert "ORG" in question and "companies" not in question  # short: the name only
    doc = make_doc(["Heart", "cells"], ["B-Organ", "O"])
    rows = build_rows([doc], prompter, LABELS, RowSettings(absent_types=1), random.Random(0))
    listed = decode(prompter, rows[0].prompt[: rows[0].layout.text_start])
    assert "- Organ: organs of the body" in listed and "PERSON" not in listed
    assert sum(f"- {label}:" in listed for label in TYPES) == 2


def test_layout_a_keeps_the_description_in_each_question():
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v1"), LABELS)
    assert "Entity types" not in decode(prompter, prompter.prefix_ids)
    assert "companies and institutions" in decode(prompter, prompter.questions["ORG"].ids)


def test_bad_types_are_errors(prompter):
    doc = make_doc(["Heart"], ["B-Organ"], types={"Cell": {"description": "cells"}})
    with pytest.raises(ValueError, match=r"entities of \['Organ'\]"):
        build_rows([doc], prompter, LABELS)
    doc = make_doc(["Heart"], ["O"], types=["Organ"])
    with pytest.raises(ValueError, match="must be a non-empty dict"):
        build_rows([doc], prompter, LABELS)
    with pytest.raises(ValueError, match="absent_types"):
        row_settings(absent_types=-1)


def test_a_joint_template_asks_once_per_sentence_and_names_each_entitys_type():
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v3"), LABELS)
    doc = make_doc(["Tim", "Cook", "of", "Apple", "and", "Ana"],
                   ["B-PERSON", "I-PERSON", "O", "B-ORG", "O", "B-PERSON"], types=None)
    empty = make_doc(["Nothing", "here"], ["O", "O"], types=None)
    rows = build_rows([doc, empty], prompter, LABELS)
    assert [r.label for r in rows] == ["", ""]  # ALL_TYPES: one row per sentence
    text = prompter.encode_text(doc.text)
    assert rows[0].prompt == prompter.prompt_ids(text, "")
    assert rows[0].layout == prompter.layout(text, "")
    # every entity, in the order of the text, under its type's name
    answer = decode(prompter, rows[0].response[:-1])
    assert answer == "\nPERSON <<< Tim Cook >>>\nORG <<< Apple >>>\nPERSON <<< Ana >>>"
    assert rows[0].typed_entities() == [("PERSON", 0, 8), ("ORG", 12, 17), ("PERSON", 22, 25)]
    assert rows[1].response == (prompter.eos_id,) and rows[1].entities == []
    # the prefix lists both types with their descriptions; the question is the same for all
    prefix = decode(prompter, rows[0].prompt[: rows[0].layout.text_start])
    assert "- PERSON: names of people\n- ORG: companies and institutions\n" in prefix
    assert rows[0].prompt[rows[0].layout.text_end:] == rows[1].prompt[rows[1].layout.text_end:]


def test_joint_rows_list_the_asked_types_under_the_names_they_answer_with():
    prompter = Prompter(tiny_tokenizer(), Template.load("ner.v3"), LABELS)
    doc = make_doc(["Heart", "cells"], ["B-Organ", "O"])
    seen = set()
    for seed in range(30):
        (row,) = build_rows([doc], prompter, LABELS, RowSettings(1, vary_names=True),
                            random.Random(seed))
        listed = {label: decode(prompter, row.prompt[lo:hi]).strip()
                  for label, lo, hi in row.layout.names}
        assert "Organ" in listed and len(listed) == 2 and set(listed) <= set(TYPES)
        # the answer opens the entity with the name the prefix shows for its type
        assert decode(prompter, row.response).startswith(f"\n{listed['Organ']} <<< Heart >>>")
        assert row.entity_labels == ("Organ",)
        seen.add(listed["Organ"])
    assert {"Organ", "organ", "body organ"} <= seen
