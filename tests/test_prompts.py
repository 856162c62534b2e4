import pytest

from spacy_cllmfs.prompts import Prompter, Template
from spacy_cllmfs.testing import tiny_tokenizer


@pytest.fixture(scope="module")
def prompter():
    return Prompter(tiny_tokenizer(), Template.load("ner.v1"), {"PERSON": "names of people"})


def test_unknown_template_names_the_known_ones():
    with pytest.raises(ValueError, match="ner.v1"):
        Template.load("ner.v999")


def test_question_marks_the_type_name(prompter):
    question = prompter.questions["PERSON"]
    name = prompter.tokenizer.decode(question.ids[question.name_start : question.name_end])
    assert name.strip() == "PERSON"
    assert "names of people" in prompter.tokenizer.decode(question.ids)


def test_text_offsets_point_into_the_text(prompter):
    text = "Tim Cook said Apple 😀 will open."
    encoded = prompter.encode_text(text)
    text_ids = encoded.ids[encoded.text_start : encoded.text_end]
    assert len(text_ids) == len(encoded.offsets)
    assert prompter.tokenizer.decode(text_ids) == text
    starts = [start for start, _ in encoded.offsets]
    assert starts == sorted(starts) and encoded.offsets[-1][1] == len(text)


def test_prompt_is_prefix_text_question(prompter):
    encoded = prompter.encode_text("Tim Cook spoke.")
    ids = prompter.prompt_ids(encoded, "PERSON")
    assert ids == prompter.prefix_ids + encoded.ids + prompter.questions["PERSON"].ids
    decoded = prompter.tokenizer.decode(ids)
    assert decoded.index("Tim Cook spoke.") < decoded.index("PERSON")


def test_response_wraps_each_span_and_ends(prompter):
    spans = prompter.encode_spans(["Tim Cook", "Apple"])
    ids = prompter.response_ids(spans)
    expected = (
        prompter.open_ids + spans[0] + prompter.close_ids
        + prompter.open_ids + spans[1] + prompter.close_ids + (prompter.eos_id,)
    )
    assert ids == expected
    assert prompter.response_ids([]) == (prompter.eos_id,)
    text = prompter.tokenizer.decode(ids, skip_special_tokens=True)
    assert text == "\n<<< Tim Cook >>>\n<<< Apple >>>"


def test_a_joint_template_has_one_question_and_an_opening_per_type():
    from spacy_cllmfs.prompts import ALL_TYPES

    labels = {"PERSON": "names of people", "ORG": "companies"}
    joint = Prompter(tiny_tokenizer(), Template.load("ner.v3"), labels)
    assert Template.load("ner.v3").joint and not Template.load("ner.v1").joint
    assert joint.keys(["PERSON", "ORG"]) == (ALL_TYPES,)
    assert list(joint.questions) == [ALL_TYPES]
    decode = joint.tokenizer.decode
    assert decode(joint.open_for("ORG")) == "\nORG <<<"
    assert set(joint.openings(ALL_TYPES)) == {"PERSON", "ORG"}
    # the prefix lists the types, and prefix_names points at each name
    assert [(name, decode(joint.prefix_ids[lo:hi]).strip())
            for name, lo, hi in joint.prefix_names] == [("PERSON", "PERSON"), ("ORG", "ORG")]
    assert "- ORG: companies" in decode(joint.prefix_ids)
    spans = joint.encode_spans(["Ana", "Acme"])
    response = joint.response_ids(spans, ["PERSON", "ORG"])
    assert decode(response, skip_special_tokens=True) == "\nPERSON <<< Ana >>>\nORG <<< Acme >>>"
    with pytest.raises(ValueError, match="type name of every span"):
        joint.response_ids(spans)


@pytest.mark.parametrize("template", ["ner.v1", "ner.v3"])
def test_spans_encode_as_the_tokenizer_encodes_them(template):
    """encode_spans reads the fast tokenizer's Rust encoder directly: the same ids as calling
    the tokenizer, for every kind of text (spaces, emoji, other scripts, the delimiters)."""
    tokenizer = tiny_tokenizer()
    prompter = Prompter(tokenizer, Template.load(template), {"PERSON": "people"})
    texts = ["Maria", "Maria Lopez", " Oslo", "x", "日本", "🙂 ok", "a>>>b", "<<<", "\t tab"]
    filled = [prompter.template.span.format(span=t) for t in texts]
    expected = [tuple(ids) for ids in tokenizer(filled, add_special_tokens=False)["input_ids"]]
    assert prompter.encode_spans(texts) == expected
    # Truncation left on the Rust encoder would cut spans: encode_spans then goes through the
    # tokenizer's call, which encodes without it, as before.
    tokenizer.backend_tokenizer.enable_truncation(2)
    assert prompter.encode_spans(texts) == expected
