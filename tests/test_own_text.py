"""Rehearsal from the user's own text: reading it, drawing from it, labelling it with the
starting adapter, and the DocBin the recipe trains on."""
import subprocess
import sys

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs import own_text, recipe
from spacy_cllmfs.convention import REFUSED
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.rows import TYPES_KEY, doc_types

from . import util
from .test_recipe import docbin

# Written for these tests.
TEXTS = ["Tim Cook said Apple will open an office in Lagos.", "", "Rain is due on Friday.",
         "Maria Lopez flew from Madrid.", "Kenji Watanabe joined Acme Robotics in March.",
         "Rain is due on Friday."]


def test_texts_are_read_from_txt_jsonl_and_docbin_files(tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    srsly.write_jsonl(tmp_path / "t.jsonl", [{"text": t, "meta": 1} for t in TEXTS])
    nlp = spacy.blank("en")
    DocBin(docs=[nlp.make_doc(t) for t in TEXTS]).to_disk(tmp_path / "t.spacy")
    kept = [t for t in TEXTS if t]  # blank texts are left out, duplicates and order kept
    for name in ("t.txt", "t.jsonl", "t.spacy"):
        assert own_text.read_texts(tmp_path / name) == kept


def test_bad_text_files_are_errors_that_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="No file of texts"):
        own_text.read_texts(tmp_path / "none.txt")
    srsly.write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, {"content": "no text key"}])
    with pytest.raises(ValueError, match="line 2"):
        own_text.read_texts(tmp_path / "bad.jsonl")
    (tmp_path / "t.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"\.txt"):
        own_text.read_texts(tmp_path / "t.csv")


def test_draw_leaves_out_the_shots_and_keeps_the_order_and_each_text_once():
    texts = [f"text {i}" for i in range(50)]
    drawn = own_text.draw(texts, 10, seed=1, exclude=["text 0", "text 1"])
    assert len(drawn) == len(set(drawn)) == 10
    assert not {"text 0", "text 1"} & set(drawn)
    assert drawn == sorted(drawn, key=texts.index)
    assert drawn == own_text.draw(texts, 10, seed=1, exclude=["text 0", "text 1"])
    assert drawn != own_text.draw(texts, 10, seed=2, exclude=["text 0", "text 1"])
    # fewer texts than asked: all of them, once each
    assert own_text.draw(["a", "b", "a"], 32, seed=0) == ["a", "b"]
    with pytest.raises(ValueError, match="No text to label"):
        own_text.draw(["a"], 5, seed=0, exclude=["a"])
    with pytest.raises(ValueError, match="at least 1"):
        own_text.draw(["a"], 0, seed=0)


def test_the_texts_carry_the_pipelines_entities_and_the_types(trained_nlp, tmp_path):
    """Each doc holds what the pipeline predicts (only the types asked for) and the types with
    their descriptions, so that training asks it about them as about a rehearsal sentence;
    it goes through a DocBin to the recipe's reader unchanged."""
    texts = [t for t, _ in util.TRAIN]
    expected = [[(e.start_char, e.end_char, e.label_) for e in d.ents]
                for d in trained_nlp.pipe(texts)]
    assert any(expected)  # the fixture predicts entities, so the test can see them kept
    docs = own_text.labelled(trained_nlp, texts, {"PERSON": "names of people"})
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == \
        [[e for e in ents if e[2] == "PERSON"] for ents in expected]
    assert docs[0].user_data[TYPES_KEY] == {"PERSON": {"description": "names of people"}}
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "own.spacy")
    read = recipe.rehearsal_docs(str(tmp_path / "own.spacy"), 3, 0, spacy.blank("en").vocab)
    assert [d.text for d in read] == texts
    assert list(doc_types(read[0], util.LABELS)) == ["PERSON"]


def own_text_command(tmp_path, *extra):
    from spacy_cllmfs import configs

    config = spacy.util.load_config(configs.path("fewshot"))
    config["components"]["cllmfs_ner"]["model"]["base_model"] = util.TINY
    config.to_disk(tmp_path / "tiny.cfg")
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS), encoding="utf8")
    train = docbin(tmp_path / "train.spacy", util.TRAIN)
    srsly.write_json(tmp_path / "labels.json", util.LABELS)
    return subprocess.run(
        [sys.executable, "-m", "spacy_cllmfs.own_text", str(tmp_path / "texts.txt"),
         str(tmp_path / "labels.json"), str(tmp_path / "out" / "own.spacy"), "--n", "32",
         "--exclude", str(train), "--config", str(tmp_path / "tiny.cfg"), *extra],
        capture_output=True, text=True)


@pytest.mark.slow
def test_the_command_labels_nothing_when_the_adapter_misses_the_shots_entities(tmp_path):
    """The untrained tiny model finds none of the training sentences' entities: its labels
    would teach its convention, so nothing is written and the exit status says why."""
    done = own_text_command(tmp_path)
    assert done.returncode == REFUSED, done.stderr[-2000:]
    assert "finds 0% of the entities" in done.stderr and "--min-recall 0" in done.stderr
    assert not (tmp_path / "out" / "own.spacy").exists()


@pytest.mark.slow
def test_the_command_labels_a_users_text_with_the_configs_model(tmp_path):
    """`python -m spacy_cllmfs.own_text`: the texts not among the training sentences, labelled
    by the training config's model block (here the tiny model), as a DocBin the recipe reads;
    --min-recall 0 uses the labels whatever the model finds of the training sentences."""
    done = own_text_command(tmp_path, "--min-recall", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    docs = read_docs(tmp_path / "out" / "own.spacy", spacy.blank("en").vocab)
    # TEXTS less the blank one, the repeat and the two training sentences
    assert [d.text for d in docs] == ["Rain is due on Friday.",
                                      "Kenji Watanabe joined Acme Robotics in March."]
    assert all(set(d.user_data[TYPES_KEY]) == set(util.LABELS) for d in docs)
    assert "2 of your texts" in done.stdout
