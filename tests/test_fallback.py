"""The recipe's per-type fallback to the starting adapter (fallback.py), and the component's
leave_labels, which it uses."""
import pytest
import spacy
from spacy.tokens import DocBin
from thinc.api import Adam

from spacy_cllmfs import fallback

from .util import TINY, TRAIN, examples, tiny_nlp, train

TEXTS = [text for text, _ in TRAIN]


def spans(doc, label=None):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents
            if label is None or e.label_ == label]


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A trained tiny pipeline's adapter folder: the starting adapter of the pipelines below
    (it answers PERSON and ORG on TRAIN)."""
    folder = tmp_path_factory.mktemp("start")
    train(tiny_nlp()).to_disk(folder)
    return folder / "cllmfs_ner" / "adapter"


def forgetting(start, label="PERSON", steps=30):
    """A pipeline that starts from `start` and is trained on TRAIN with the entities of `label`
    taken out: it stops answering `label`, as a few-shot run can stop answering a type."""
    nlp = tiny_nlp(model={"base_model": TINY, "start": str(start)})
    data = [(text, [e for e in entities if e[2] != label]) for text, entities in TRAIN]
    egs = examples(nlp, data)
    spacy.util.fix_random_seed(0)
    nlp.initialize(lambda: egs)
    optimizer = Adam(0.01)
    for _ in range(steps):
        nlp.update(egs, sgd=optimizer)
    return nlp


def alone(start, labels):
    """The starting adapter on its own, decoding `labels` as the fallback's component does."""
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config={"labels": labels, "decoding": fallback.GREEDY,
                                       "model": {"base_model": TINY, "start": str(start)}})
    nlp.initialize()
    return nlp


def test_flag_takes_back_the_types_the_trained_model_stopped_answering():
    start = {"a": 10, "b": 10, "c": 4, "d": 6, "e": 0}
    trained = {"a": 4, "b": 5, "c": 0, "d": 2, "e": 0}
    # a: 4 < 5; b: 5 is half, not below it; c: too few adapter answers to compare; d: 2 < 3
    assert fallback.flag(start, trained) == ["a", "d"]
    assert fallback.flag(start, trained, ratio=0.25) == []
    assert fallback.flag(start, trained, min_answers=1) == ["a", "c", "d"]
    assert fallback.flag(start, {}) == ["a", "b", "d"]  # a type never answered counts 0


def test_answers_counts_texts_with_an_entity_of_each_label(trained_nlp):
    docs = list(trained_nlp.pipe(TEXTS))
    expected = {label: sum(1 for d in docs if spans(d, label)) for label in ("PERSON", "ORG")}
    assert fallback.answers(trained_nlp, TEXTS, ["PERSON", "ORG"]) == expected
    assert expected["PERSON"] > 0 and expected["ORG"] > 0  # the fixture answers both
    assert fallback.answers(trained_nlp, TEXTS, ["ORG"]) == {"ORG": expected["ORG"]}


def test_a_left_label_is_not_answered_and_the_others_do_not_change(trained_nlp):
    nlp = trained_nlp  # the session's fixture: restored below
    component = nlp.get_pipe("cllmfs_ner")
    before = [spans(d) for d in nlp.pipe(TEXTS)]
    assert any(spans(d, "PERSON") for d in nlp.pipe(TEXTS))
    try:
        component.leave_labels(["PERSON"])
        assert component.answered_labels == ("ORG",)
        assert component.labels == ("PERSON", "ORG")  # still its labels
        after = [spans(d) for d in nlp.pipe(TEXTS)]
        assert after == [[s for s in ents if s[2] != "PERSON"] for ents in before]
        # saved with the component
        copy = spacy.blank("en")
        copy.add_pipe("cllmfs_ner", config={"model": {"base_model": TINY}})
        copy.from_bytes(nlp.to_bytes())
        assert copy.get_pipe("cllmfs_ner").answered_labels == ("ORG",)
        assert [spans(d) for d in copy.pipe(TEXTS)] == after
        with pytest.raises(ValueError, match="not among its labels"):
            component.leave_labels(["LOC"])
        with pytest.raises(ValueError, match="leaving every label"):
            component.leave_labels(["PERSON", "ORG"])
    finally:
        component.leave_labels([])
    assert component.answered_labels == ("PERSON", "ORG")
    assert [spans(d) for d in nlp.pipe(TEXTS)] == before


def test_a_joint_template_drops_the_left_labels_answers(trained_joint_nlp):
    component = trained_joint_nlp.get_pipe("cllmfs_ner")
    before = [spans(d) for d in trained_joint_nlp.pipe(TEXTS)]
    assert any(s[2] == "ORG" for ents in before for s in ents)
    try:
        component.leave_labels(["ORG"])
        assert [spans(d) for d in trained_joint_nlp.pipe(TEXTS)] == \
            [[s for s in ents if s[2] != "ORG"] for ents in before]
    finally:
        component.leave_labels([])


def test_apply_hands_a_lost_type_back_to_the_starting_adapter(start, tmp_path):
    """The trained pipeline stopped answering PERSON, which its starting adapter answers:
    PERSON goes back to the adapter (a second component), ORG stays with the trained one, and
    the pipeline saves and loads as it predicts."""
    nlp = forgetting(start)
    texts = TEXTS * 3  # enough answers for the guard (MIN_ANSWERS)
    trained_org = [spans(d, "ORG") for d in nlp.pipe(TEXTS)]
    assert not any(spans(d, "PERSON") for d in nlp.pipe(TEXTS))
    adapter = alone(start, {"PERSON": "names of people"})
    adapter_person = [spans(d, "PERSON") for d in adapter.pipe(TEXTS)]
    assert any(adapter_person)
    back, counts_start, counts_trained = fallback.apply(nlp, texts)
    assert back == ["PERSON"] == fallback.flag(counts_start, counts_trained)
    assert counts_trained["PERSON"] == 0 and counts_start["PERSON"] >= fallback.MIN_ANSWERS
    assert nlp.pipe_names == ["cllmfs_ner", fallback.START_NAME]
    assert nlp.get_pipe("cllmfs_ner").answered_labels == ("ORG",)
    assert nlp.get_pipe(fallback.START_NAME).labels == ("PERSON",)
    docs = list(nlp.pipe(TEXTS))
    assert [spans(d, "ORG") for d in docs] == trained_org
    # the adapter's PERSON entities, less any that overlap the trained component's
    assert [spans(d, "PERSON") for d in docs] == [
        [p for p in person if not any(p[0] < o[1] and o[0] < p[1] for o in org)]
        for person, org in zip(adapter_person, trained_org)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.pipe_names == nlp.pipe_names
    assert [spans(d) for d in loaded.pipe(TEXTS)] == [spans(d) for d in docs]


def test_every_type_handed_back_leaves_the_starting_adapter_alone(start):
    """It takes the trained component's place and name, so that what reads the pipeline's
    cllmfs_ner (the project's evaluate) finds it."""
    nlp = forgetting(start)
    fallback.attach(nlp, ["PERSON", "ORG"])
    assert nlp.pipe_names == ["cllmfs_ner"]
    assert nlp.config["components"]["cllmfs_ner"]["decoding"]["answer_threshold"] == 0.5
    labels = {"PERSON": "names of people", "ORG": "companies, agencies, institutions"}
    assert [spans(d) for d in nlp.pipe(TEXTS)] == \
        [spans(d) for d in alone(start, labels).pipe(TEXTS)]
    nlp.add_pipe("cllmfs_ner", name=fallback.START_NAME,
                 config=fallback.start_config(nlp, ["PERSON"]))
    with pytest.raises(ValueError, match="already has"):
        fallback.attach(nlp, ["PERSON"])


def test_attach_names_a_label_the_component_lacks(trained_nlp):
    with pytest.raises(ValueError, match=r"has no labels \['LOC'\]"):
        fallback.attach(trained_nlp, ["LOC"])
    assert trained_nlp.pipe_names == ["cllmfs_ner"]


def test_the_command_rewrites_the_model_only_when_a_type_goes_back(trained_nlp, tmp_path,
                                                                     capsys):
    """Nothing to hand back (the tiny model's starting adapter is blank and answers too little
    to compare): the folder is left as it was. Texts that training saw are not drawn; with
    none left there is nothing to check."""
    trained_nlp.to_disk(tmp_path / "model")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "model").rglob("*")}
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS), encoding="utf8")
    fallback.main([str(tmp_path / "model"), str(tmp_path / "texts.txt")])
    out = capsys.readouterr().out
    assert f"in {len(TEXTS)} of your texts" in out and "Every type kept" in out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "model").rglob("*")} == before
    DocBin(docs=[trained_nlp.make_doc(t) for t in TEXTS]).to_disk(tmp_path / "train.spacy")
    fallback.main([str(tmp_path / "model"), str(tmp_path / "texts.txt"),
                   "--exclude", str(tmp_path / "train.spacy")])
    assert "No per-type fallback check" in capsys.readouterr().out


def test_the_starting_adapter_decodes_greedily_whatever_the_decoding_block_sets(trained_nlp):
    """The recipe's thresholds are set back to greedy; a block without them (Decoding.v1, or
    v2 with its defaults) keeps its own keys, so that its function accepts them."""
    block = dict(trained_nlp.config["components"]["cllmfs_ner"]["decoding"])
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config={
        "labels": {"PERSON": "names of people"}, "model": {"base_model": TINY},
        "decoding": {**block, "threshold": 0.3, "answer_threshold": 0.2}})
    config = fallback.start_config(nlp, ["PERSON"])
    assert config["decoding"]["threshold"] == fallback.GREEDY["threshold"]
    assert config["decoding"]["answer_threshold"] == fallback.GREEDY["answer_threshold"]
    assert config["labels"] == {"PERSON": "names of people"}
    v1 = spacy.blank("en")
    v1.add_pipe("cllmfs_ner", config={"labels": ["PERSON"], "model": {"base_model": TINY},
                                      "decoding": {"@misc": "spacy_cllmfs.Decoding.v1"}})
    config = fallback.start_config(v1, ["PERSON"])
    assert "answer_threshold" not in config["decoding"]
    v1.add_pipe("cllmfs_ner", name="start", config=config)  # its function accepts them


def test_the_command_writes_the_fallback_into_the_model_folder(start, tmp_path, capsys):
    """A type handed back (here with --min-answers 1, on the three training texts): the folder
    is rewritten, and loads with both components, predicting as the pipeline did."""
    forgetting(start).to_disk(tmp_path / "model")
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS), encoding="utf8")
    fallback.main([str(tmp_path / "model"), str(tmp_path / "texts.txt"), "--min-answers", "1"])
    out = capsys.readouterr().out
    assert "PERSON 2 -> 0" in out and "Handed back to the starting adapter" in out
    loaded = spacy.load(tmp_path / "model")
    assert loaded.pipe_names == ["cllmfs_ner", fallback.START_NAME]
    expected = forgetting(start)
    fallback.attach(expected, ["PERSON"])
    assert [spans(d) for d in loaded.pipe(TEXTS)] == [spans(d) for d in expected.pipe(TEXTS)]
