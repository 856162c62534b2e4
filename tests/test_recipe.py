"""The few-shot recipe as the package ships it: plain `spacy train` on a user's DocBin and
labels file, with no --code and no hand-computed overrides; the project's `train` command."""
import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.util import registry

from spacy_cllmfs import configs, recipe
from spacy_cllmfs import fallback as type_fallback
from spacy_cllmfs.convention import REFUSED
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.prompts import label_dict
from spacy_cllmfs.rows import TYPES_KEY

from . import util

PROJECT = Path(__file__).resolve().parents[1] / "project"
TINY = ["--components.cllmfs_ner.model.base_model.@misc", "spacy_cllmfs.TinyLlama.v1"]


def docbin(path, data, types=None):
    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    for text, ents in data:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ents]
        if types:
            doc.user_data[TYPES_KEY] = types
        db.add(doc)
    db.to_disk(path)
    return path


@pytest.fixture
def user_data(tmp_path):
    """A DocBin and a labels file in the project's type-file form (with an `_about` note)."""
    labels = {"_about": "written for this test",
              "PERSON": {"description": "names of people", "names": ["person"]},
              "ORG": "companies, agencies, institutions"}
    srsly.write_json(tmp_path / "labels.json", labels)
    return docbin(tmp_path / "train.spacy", util.TRAIN), tmp_path / "labels.json"


def test_labels_files_in_every_documented_form():
    assert label_dict(["PER", "ORG"]) == {"PER": "PER", "ORG": "ORG"}
    assert label_dict({"PER": "people", "_about": "a note"}) == {"PER": "people"}
    assert label_dict({"PER": {"description": "people", "names": ["person"]}}) == {"PER": "people"}
    with pytest.raises(ValueError, match="No usable entity label"):
        label_dict({"_about": "only a note"})
    with pytest.raises(ValueError, match="must be a string"):
        label_dict({"PER": 3})


def test_the_schedule_follows_the_number_of_sentences(tmp_path):
    path = str(docbin(tmp_path / "t.spacy", util.TRAIN * 10))  # 30 sentences
    assert recipe.fewshot_steps_for(path, None, 32, epochs=10, batch_size=2) == 150
    assert recipe.fewshot_steps_for(path, None, 32, epochs=10, batch_size=2, evaluations=1) == 150
    rehearsal = str(docbin(tmp_path / "r.spacy", util.UNSEEN * 20, {"PERSON": "people"}))
    assert recipe.fewshot_steps_for(path, rehearsal, 10, epochs=10, batch_size=2) == 200
    schedule = recipe.fewshot_warmup_linear(0.001, path, None, 0, epochs=10, batch_size=2)
    rates = [next(schedule) for _ in range(151)]
    assert rates[0] == 0 and max(rates) == pytest.approx(0.001) and rates[150] == 0
    assert rates.index(max(rates)) == 15  # warmup: a tenth of the steps


def test_rehearsal_mixes_the_sentences_compare_drew(tmp_path, caplog):
    """The reader adds `rehearsal` source sentences, drawn as compare.py draws them
    (random.Random(seed) over the file, in corpus order), after the user's own."""
    pool = [(f"Acme sentence {i} .", [(0, 4, "ORG")]) for i in range(40)]
    rehearsal = docbin(tmp_path / "r.spacy", pool, {"ORG": "companies"})
    train = docbin(tmp_path / "t.spacy", util.TRAIN)
    nlp = spacy.blank("en")
    read = recipe.fewshot_corpus(str(train), str(rehearsal), rehearsal=5, seed=3)
    texts = [eg.reference.text for eg in read(nlp)]
    drawn = sorted(random.Random(3).sample(range(40), 5))
    assert texts == [t for t, _ in util.TRAIN] + [pool[i][0] for i in drawn]
    with caplog.at_level(logging.WARNING, logger="spacy_cllmfs"):
        alone = recipe.fewshot_corpus(str(train), str(tmp_path / "missing.spacy"), 5)
        assert len(list(alone(nlp))) == 3
        assert len(list(alone(nlp))) == 3
    assert caplog.text.count("training on your sentences alone") == 1


def test_an_unknown_label_in_the_training_data_is_a_warning_that_names_it():
    nlp = util.tiny_nlp({"PERSON": "names of people", "COMPANY": "companies"})
    egs = util.examples(nlp)
    with pytest.warns(UserWarning, match=r"\['PERSON', 'COMPANY'\]: 'ORG' \(2\)"):
        nlp.initialize(lambda: egs)


def test_plain_spacy_train_on_the_shipped_config(user_data, tmp_path):
    """No --code, no schedule overrides: the logger, reader and schedule come from the
    package's entry points. The trained pipeline loads and keeps the labels."""
    train, labels = user_data
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(configs.path("fewshot")),
         "--paths.train", str(train), "--paths.dev", str(train), "--paths.labels", str(labels),
         "--paths.log", str(out / "log.jsonl"), "--output", str(out), *TINY],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training on your sentences alone" in done.stderr
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    evaluated = [r["step"] for r in records if "step" in r]
    assert evaluated == [0, 20]  # 3 sentences: the floor of 20 steps, one evaluation at the end
    assert sum("update" in r for r in records) == 21  # spacy train's steps 0 to 20
    nlp = spacy.load(out / "model-last")
    assert nlp.get_pipe("cllmfs_ner").label_descriptions == {
        "PERSON": "names of people", "ORG": "companies, agencies, institutions"}


def test_configs_module_writes_the_shipped_config(tmp_path):
    subprocess.run([sys.executable, "-m", "spacy_cllmfs.configs", "fewshot",
                    str(tmp_path / "f.cfg")], check=True)
    assert (tmp_path / "f.cfg").read_text() == configs.path("fewshot").read_text()
    with pytest.raises(ValueError, match="ships"):
        configs.path("nope")


@pytest.mark.slow
def test_the_projects_train_command_on_a_users_data(user_data, tmp_path):
    """`spacy project run train` on a DocBin and labels file the project has never seen, then
    `evaluate` beside the shipped adapter's zero-shot."""
    train, labels = user_data
    config = spacy.util.load_config(configs.path("fewshot"))
    config["components"]["cllmfs_ner"]["model"]["base_model"] = {"@misc": "spacy_cllmfs.TinyLlama.v1"}
    config.to_disk(tmp_path / "tiny.cfg")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("project.yml", "scripts"):
        source = PROJECT / name
        (subprocess.run(["cp", "-r", str(source), str(project / name)], check=True))
    # the text the user will process: two new texts and one training sentence, left out
    (tmp_path / "mine.txt").write_text("Omar Haddad spoke for Fabrikam.\n"
                                       "Maria Lopez flew from Madrid.\nRain is due.\n")
    common = ["--vars.train_data", str(train), "--vars.labels", str(labels),
              "--vars.dev_data", str(train), "--vars.config", str(tmp_path / "tiny.cfg"),
              "--vars.own_text", str(tmp_path / "mine.txt")]
    # the untrained tiny model finds none of the training sentences' entities: its labels of
    # the text are not used; the recipe trains with the source rehearsal or on the training
    # sentences alone (--vars.own_text_rejected), and the command says which
    trained_with = {}
    for choice, flags in (("source", ["--vars.own_text_rejected", "source"]),
                          ("shots", [])):  # the shots alone are the default
        done = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "train",
                               str(project), *common, *flags], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
        assert "--min-recall" in done.stderr
        assert "--vars.own_text_min_recall 0" in done.stdout  # what a project user passes
        assert not (project / "training" / "custom" / "own_text.spacy").exists()
        trained_with[choice] = (done.stdout, spacy.util.load_config(
            project / "training" / "custom" / "model-last" / "config.cfg")["corpora"]["train"])
    assert "instead of your text" in trained_with["source"][0]
    assert "--vars.own_text_rejected shots" not in trained_with["source"][0]
    assert trained_with["source"][1]["rehearsal"] == 32
    assert "your sentences alone" in trained_with["shots"][0]
    assert "--vars.own_text_rejected source" in trained_with["shots"][0]
    assert trained_with["shots"][1]["rehearsal"] == 0
    # without the text, the same check decides about the source rehearsal: not used here
    source = docbin(tmp_path / "source.spacy", util.TRAIN, {"ORG": "companies"})
    done = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "train",
                           str(project), *common[:-2], "--vars.rehearsal", str(source)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert f"finds 0% of the entities of {train}" in done.stderr
    assert "without the source rehearsal" in done.stdout
    assert "--vars.own_text_rejected source" in done.stdout
    assert spacy.util.load_config(project / "training" / "custom" / "model-last" / "config.cfg")[
        "corpora"]["train"]["rehearsal"] == 0
    said = {}
    for command in ("train", "evaluate"):
        done = subprocess.run([sys.executable, "-m", "spacy", "project", "run", command,
                               str(project), *common, "--vars.own_text_min_recall", "0",
                               "--vars.fallback", "on"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
        said[command] = done.stdout
    # the per-type fallback draws from the text less what training saw: nothing is left here
    assert "No per-type fallback check" in said["train"]
    assert "shipped adapter zero-shot" in said["evaluate"]
    nlp = spacy.load(project / "training" / "custom" / "model-last")
    assert set(nlp.get_pipe("cllmfs_ner").labels) == {"PERSON", "ORG"}
    own = read_docs(project / "training" / "custom" / "own_text.spacy", nlp.vocab)
    assert [d.text for d in own] == ["Omar Haddad spoke for Fabrikam.", "Rain is due."]
    assert all(set(d.user_data[TYPES_KEY]) == {"PERSON", "ORG"} for d in own)
    result = srsly.read_json(project / "metrics" / "custom.json")
    assert set(result) >= {"trained", "zero_shot"} and result["sentences"] == 3


@pytest.mark.slow
def test_the_projects_train_command_says_what_is_missing(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("project.yml", "scripts"):
        subprocess.run(["cp", "-r", str(PROJECT / name), str(project / name)], check=True)
    srsly.write_json(tmp_path / "empty.json", {"_about": "no labels"})
    docbin(tmp_path / "t.spacy", util.TRAIN)
    for args, message in (([], "Give your data"),
                          (["--vars.train_data", str(tmp_path / "t.spacy"), "--vars.labels",
                            str(tmp_path / "empty.json")], "No usable entity label")):
        done = subprocess.run([sys.executable, "-m", "spacy", "project", "run", "train",
                               str(project), *args], capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stdout + done.stderr


def test_spacy_assemble_takes_the_shipped_config_without_a_corpus(user_data, tmp_path):
    """`spacy assemble` (the untrained pipeline, as the project's assemble step builds it)
    fills the recipe's blocks with paths.train unset."""
    _, labels = user_data
    done = subprocess.run(
        [sys.executable, "-m", "spacy", "assemble", str(configs.path("fewshot")),
         str(tmp_path / "assembled"), "--paths.labels", str(labels), *TINY],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    nlp = spacy.load(tmp_path / "assembled")
    assert set(nlp.get_pipe("cllmfs_ner").labels) == {"PERSON", "ORG"}
    assert recipe.fewshot_steps_for("${paths.train}", None, "${corpora.train.rehearsal}") == 20
    read = recipe.fewshot_corpus(None)
    with pytest.raises(ValueError, match="paths.train"):
        list(read(spacy.blank("en")))


def test_a_resumed_warmup_linear_goes_on_where_the_earlier_run_stopped():
    from thinc.api import warmup_linear

    from spacy_cllmfs.schedule import resumed_warmup_linear

    whole = [next(rates) for rates in [warmup_linear(1e-3, 3, 10)] for _ in range(12)]
    later = resumed_warmup_linear(1e-3, 3, 10, done_steps=4)
    assert [next(later) for _ in range(8)] == whole[4:]
    assert next(resumed_warmup_linear(1e-3, 3, 10)) == whole[0]
    with pytest.raises(ValueError, match="done_steps"):
        resumed_warmup_linear(1e-3, 3, 10, done_steps=-1)
    resolved = registry.resolve({"x": {"@schedules": "spacy_cllmfs.resumed_warmup_linear.v1",
                                       "initial_rate": 1e-3, "warmup_steps": 3,
                                       "total_steps": 10, "done_steps": 9}})
    assert next(resolved["x"]) == whole[9]


def test_a_shipped_config_is_reported_by_its_name_on_every_machine(tmp_path):
    """compare.json names the recipe "fewshot", not the install path, so that summaries from
    two machines (or checkouts) merge; a copy elsewhere is reported by its own path."""
    assert configs.name_of(configs.resolve("fewshot")) == "fewshot"
    copy = tmp_path / "fewshot.cfg"
    copy.write_text(configs.path("fewshot").read_text())
    assert configs.name_of(copy) == str(copy)
    assert configs.name_of("configs/cllmfs_cpu.cfg") == "configs/cllmfs_cpu.cfg"


def test_train_rehearses_the_source_sentences_only_where_the_adapter_knows_the_convention(
        user_data, tmp_path, monkeypatch, capsys):
    """Without --own-text, where the source rehearsal exists and the user did not set its
    count, `train` first checks the starting adapter on the training sentences
    (spacy_cllmfs.convention): known, it rehearses the source sentences; not known, it trains on
    the sentences alone, or with the source rehearsal under --if-rejected source; and says
    which. No check where the user set the rehearsal, where there is none, or at
    --own-text-min-recall 0."""
    train_custom = util.load_script("train_custom")
    train, labels = user_data
    rehearsal = docbin(tmp_path / "source.spacy", util.TRAIN, {"ORG": "companies"})
    status = {}
    commands = []

    def run(command, check=False):
        commands.append(command)
        return subprocess.CompletedProcess(command, status["check"] if "spacy_cllmfs.convention"
                                           in command else 0)

    monkeypatch.setattr(train_custom.subprocess, "run", run)
    zero = ["--corpora.train.rehearsal", "0"]
    for known, source, overrides, min_recall, if_rejected, checked, alone, says in (
            (True, rehearsal, [], None, "shots", True, False, "Training with the source rehearsal"),
            (False, rehearsal, [], None, "shots", True, True, "your sentences alone"),
            (False, rehearsal, [], 0.5, "source", True, False, "as --if-rejected source asks"),
            (False, rehearsal, zero, None, "shots", False, True, ""),
            (False, tmp_path / "missing.spacy", [], None, "shots", False, False, ""),
            (False, rehearsal, [], 0.0, "shots", False, False, "Training with the source")):
        status["check"] = 0 if known else REFUSED
        train_custom.main("fewshot", str(train), str(labels), tmp_path / "out", "", source, -1,
                          overrides, min_recall=min_recall, if_rejected=if_rejected)
        said = capsys.readouterr().out
        command = commands.pop()
        assert command[2:4] == ["spacy", "train"]
        assert command[command.index("--paths.rehearsal") + 1] == str(source)
        count = command.index(zero[0]) + 1 if zero[0] in command else None
        assert (count is not None and command[count] == "0") == alone
        checks = [c for c in commands if "spacy_cllmfs.convention" in c]
        assert len(checks) == checked
        if checked:
            assert checks[0][checks[0].index("--min-recall") + 1] == str(min_recall or 0.2)
        assert (says in said) if says else "rehearsal" not in said
        if alone and not overrides:
            assert "--if-rejected source" in said and "--vars.own_text_rejected source" in said
        commands.clear()


def test_train_checks_the_per_type_fallback_after_training_on_the_users_text(
        user_data, tmp_path, monkeypatch):
    """With the user's text used as rehearsal, `train` runs spacy_cllmfs.fallback on
    model-last after training, with the text and what training saw (the training sentences,
    the labelled texts) to leave out; not with --fallback off, nor where the text was not
    used (the check rejected the adapter), nor by default."""
    train_custom = util.load_script("train_custom")
    train, labels = user_data
    (tmp_path / "mine.txt").write_text("Omar Haddad spoke for Fabrikam.\n")
    out = tmp_path / "out"
    status = {}
    commands = []

    def run(command, check=False):
        commands.append(command)
        if "spacy_cllmfs.own_text" in command and status["own_text"] == 0:
            out.mkdir(exist_ok=True)
            docbin(out / "own_text.spacy", util.UNSEEN)
        return subprocess.CompletedProcess(command, status["own_text"] if
                                           "spacy_cllmfs.own_text" in command else 0)

    monkeypatch.setattr(train_custom.subprocess, "run", run)
    # None: the default, off (WNUT-17 dev turned it off): one constant, and the project's var
    assert type_fallback.SWITCH[0] == "off"
    assert srsly.read_yaml(PROJECT / "project.yml")["vars"]["fallback"] == type_fallback.SWITCH[0]
    for used, fallback, checked in ((True, True, True), (True, False, False),
                                    (False, True, False), (True, None, False)):
        status["own_text"] = 0 if used else REFUSED
        commands.clear()
        chosen = {} if fallback is None else {"fallback": fallback}
        train_custom.main("fewshot", str(train), str(labels), out, "", tmp_path / "none", -1,
                          [], own_text=str(tmp_path / "mine.txt"), **chosen)
        names = [c[2] for c in commands]
        assert names[:2] == ["spacy_cllmfs.own_text", "spacy"]
        if checked:
            assert names[2:] == ["spacy_cllmfs.fallback"]
            assert commands[2][3:] == [str(out / "model-last"), str(tmp_path / "mine.txt"),
                                       "--exclude", str(train), str(out / "own_text.spacy"),
                                       "--gpu-id", "-1"]
        else:
            assert names[2:] == []
