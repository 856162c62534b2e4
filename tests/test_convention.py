"""The check of the starting adapter's convention against the shots': the recall it rests on,
the verdict, and the command that train_custom.py runs."""
import pytest
import spacy
import srsly

from spacy_cllmfs import configs, convention

from . import util
from .test_recipe import docbin


def test_the_shots_recall_is_the_share_of_their_entities_the_pipeline_finds(trained_nlp):
    gold = [d.reference for d in util.examples(trained_nlp)]
    predicted = {(i, e.start_char, e.end_char, e.label_)
                 for i, d in enumerate(trained_nlp.pipe([d.text for d in gold])) for e in d.ents}
    truth = {(i, e.start_char, e.end_char, e.label_) for i, d in enumerate(gold) for e in d.ents}
    assert convention.shots_recall(trained_nlp, gold, util.LABELS) == \
        pytest.approx(len(predicted & truth) / len(truth))
    person = [e for e in truth if e[3] == "PERSON"]
    assert convention.shots_recall(trained_nlp, gold, {"PERSON": ""}) == \
        pytest.approx(len(predicted & set(person)) / len(person))
    assert convention.shots_recall(trained_nlp, gold, {"LOC": ""}) is None  # none to find


def test_the_adapters_labels_are_trusted_when_it_finds_enough_of_the_shots(trained_nlp):
    gold = [d.reference for d in util.examples(trained_nlp)]
    # one more shot whose entity the pipeline does not find, so that recall is below 1
    missed = trained_nlp.make_doc("Qzx vrot plimb.")
    assert not trained_nlp(missed.text).ents
    missed.ents = [missed.char_span(0, 3, label="PERSON")]
    shots = gold + [missed]
    recall = convention.shots_recall(trained_nlp, shots, util.LABELS)
    assert 0 < recall < 1
    assert convention.trusted(trained_nlp, shots, util.LABELS, recall / 2) == \
        (True, pytest.approx(recall))
    assert convention.trusted(trained_nlp, shots, util.LABELS, (1 + recall) / 2) == \
        (False, pytest.approx(recall))
    assert convention.trusted(trained_nlp, shots, util.LABELS, 0) == (True, None)  # no check
    assert convention.trusted(trained_nlp, gold, {"LOC": ""}, 0.9) == (True, None)  # nothing to check


def test_the_command_says_whether_the_adapter_knows_the_shots_convention(tmp_path, capsys):
    """`python -m spacy_cllmfs.convention`: the untrained tiny model (the config's model
    block) finds none of the training sentences' entities, so the status is REFUSED and the
    message gives the share; --min-recall 0 checks nothing; shots without an entity of the
    labels leave nothing to check on."""
    config = spacy.util.load_config(configs.path("fewshot"))
    config["components"]["cllmfs_ner"]["model"]["base_model"] = util.TINY
    config.to_disk(tmp_path / "tiny.cfg")
    train = docbin(tmp_path / "train.spacy", util.TRAIN)
    srsly.write_json(tmp_path / "labels.json", util.LABELS)
    srsly.write_json(tmp_path / "other.json", {"DATE": "dates"})
    args = ["--config", str(tmp_path / "tiny.cfg")]
    with pytest.raises(SystemExit) as exited:
        convention.main([str(train), str(tmp_path / "labels.json"), *args])
    assert exited.value.code == convention.REFUSED
    said = capsys.readouterr()
    assert f"finds 0% of the entities of {train} (--min-recall 0.2)" in said.err
    assert "does not know" in said.err
    convention.main([str(train), str(tmp_path / "labels.json"), "--min-recall", "0", *args])
    assert "Nothing checked (--min-recall 0)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="No DocBin"):  # checking nothing still reads its files
        convention.main([str(tmp_path / "missing.spacy"), str(tmp_path / "labels.json"),
                         "--min-recall", "0", *args])
    convention.main([str(train), str(tmp_path / "other.json"), *args])
    assert "holds no entity of the labels" in capsys.readouterr().out
