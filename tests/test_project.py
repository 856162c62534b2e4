"""The sample project's commands, run through `spacy project run` on the tiny model."""
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import spacy
import srsly

from spacy_cllmfs.corpus import read_docs

PROJECT = Path(__file__).parent.parent / "project"
COMMANDS = ["sample-data", "convert", "sample", "assemble", "evaluate-untrained", "train",
            "evaluate"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in ("project.yml", "configs", "scripts"):
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    for command in COMMANDS:
        subprocess.run(
            [sys.executable, "-m", "spacy", "project", "run", command, str(root),
             "--vars.config", "cllmfs_smoke", "--vars.shots", "3", "--vars.seeds", "1 2"],
            check=True,
            capture_output=True,
        )
    return root


def test_sample_command_draws_k_to_2k_mentions_per_type_for_each_seed(project):
    vocab = spacy.blank("en").vocab
    for domain in ("news", "recipes"):
        for seed in (1, 2):
            types = srsly.read_json(project / "shots" / domain / f"seed{seed}.labels.json")
            assert len(types) == 3
            docs = read_docs(project / "shots" / domain / f"seed{seed}.spacy", vocab)
            counts = Counter(e.label_ for doc in docs for e in doc.ents)
            assert set(counts) == set(types)
            assert all(3 <= counts[t] <= 6 for t in types), counts


def test_train_and_evaluate_write_models_metrics_and_a_table(project):
    for domain in ("news", "recipes"):
        for seed in (1, 2):
            assert (project / "training" / domain / f"seed{seed}" / "model-best").is_dir()
            nlp = spacy.load(project / "untrained" / domain / f"seed{seed}")
            assert list(nlp.get_pipe("cllmfs_ner").labels) == srsly.read_json(
                project / "shots" / domain / f"seed{seed}.labels.json"
            )
        for name in ("untrained", "trained"):
            metrics = json.loads((project / "metrics" / name / f"{domain}.json").read_text())
            assert {"precision", "recall", "f1", "f1_std", "per_type"} <= set(metrics)
            assert metrics["seeds"] == [1, 2] and len(metrics["runs"]) == 2
            f1s = [run["f1"] for run in metrics["runs"]]
            assert metrics["f1"] == pytest.approx(sum(f1s) / 2)
    table = (project / "metrics" / "results.md").read_text()
    assert "| news_trained | 2 |" in table and "| recipes_untrained | 2 |" in table


def test_the_metrics_are_the_scores_of_the_saved_pipeline(project):
    """Scored again here, the trained news pipeline of seed 2 gets exactly the figures that
    evaluate wrote."""
    from spacy.tokens import Doc

    from spacy_cllmfs.scoring import strict_scores

    nlp = spacy.load(project / "training" / "news" / "seed2" / "model-best")
    gold = read_docs(project / "corpus" / "news" / "test.spacy", nlp.vocab)
    bare = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d])
            for d in gold]
    expected = strict_scores(gold, list(nlp.pipe(bare)), nlp.get_pipe("cllmfs_ner").labels)
    written = json.loads((project / "metrics" / "trained" / "news.json").read_text())["runs"][1]
    assert written == json.loads(json.dumps(expected))


@pytest.fixture(scope="module")
def compared(project):
    """The compare workflow on the bundled news sample, the tiny model and a short spaCy ner."""
    ner = spacy.util.load_config(project / "configs" / "spacy_ner.cfg")
    ner["training"]["max_steps"], ner["training"]["eval_frequency"] = 20, 10
    ner.to_disk(project / "configs" / "spacy_ner_smoke.cfg")
    subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "compare", str(project),
         "--vars.config", "cllmfs_smoke", "--vars.ner_config", "spacy_ner_smoke",
         "--vars.compare_domain", "news", "--vars.compare_shots", "2 3",
         "--vars.compare_seeds", "1 2", "--vars.compare_test_limit", "8",
         "--vars.compare_jobs", "2"],
        check=True,
        capture_output=True,
    )
    return project


def test_compare_scores_every_system_on_the_same_shots_and_test_docs(compared):
    result = json.loads((compared / "metrics" / "compare.json").read_text())
    systems = ["cllmfs", "no_contrastive", "no_noise", "spacy_ner", "spacy_llm_icl", "zero_shot"]
    assert list(result["systems"]) == systems
    assert result["test_docs"] == 8 and result["shots"] == [2, 3] and result["seeds"] == [1, 2]
    for name in systems:
        data = result["systems"][name]
        assert 0.0 <= data["f1"] <= 1.0 and data["f1_std"] >= 0.0
        # The headline figures are those of the smallest K.
        assert data["f1"] == data["shots"]["2"]["f1"]
        assert set(data["shots"]) == {"2", "3"}
        assert all(data["shots"][k]["seeds"] == [1, 2] for k in ("2", "3"))
    runs = compared / "compare" / "runs"
    for k in (2, 3):
        for seed in (1, 2):
            paths = [list(runs.glob(f"{name}_k{k}_seed{seed}-*.json")) for name in systems]
            assert all(len(p) == 1 for p in paths), paths
            found = [json.loads(p[0].read_text()) for p in paths]
            # Same K-shot set (same types, same sentences) and same test docs for every system.
            assert len({(tuple(r["types"]), r["train_docs"], r["test_docs"]) for r in found}) == 1
    # The ablations differ from the full objective in the config spacy train saved.
    work = compared / "compare" / "k2" / "seed1"
    cfgs = {n: spacy.util.load_config(work / n / "model-last" / "config.cfg")
            for n in ("cllmfs", "no_contrastive", "no_noise")}
    loss = {n: cfg["components"]["cllmfs_ner"]["loss"] for n, cfg in cfgs.items()}
    assert loss["cllmfs"]["weight"] > 0 and loss["cllmfs"]["noise"] > 0
    assert loss["no_contrastive"]["weight"] == 0
    assert loss["no_noise"]["noise"] == 0 and loss["no_noise"]["weight"] > 0


def test_compare_writes_a_table_and_a_plot(compared):
    table = (compared / "metrics" / "compare.md").read_text()
    assert table.startswith("| system | F1, K=2 | F1, K=3 |")
    assert all(f"| {name} |" in table for name in ("cllmfs", "spacy_llm_icl", "zero_shot"))
    png = (compared / "metrics" / "compare.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_compare_runs_are_keyed_by_what_determines_them(compared, tmp_path):
    """After a config change, the runs of the systems that use the config are not reused;
    spaCy's ner, whose config did not change, keeps its runs."""
    copy = tmp_path / "project"
    shutil.copytree(compared, copy, ignore=shutil.ignore_patterns("training", "untrained"))
    config = copy / "configs" / "cllmfs_smoke.cfg"
    text = config.read_text()
    assert "weight = 0.1" in text
    config.write_text(text.replace("weight = 0.1", "weight = 0.2"))
    subprocess.run(
        [sys.executable, "scripts/compare.py", "configs/cllmfs_smoke.cfg",
         "configs/spacy_ner_smoke.cfg", "corpus/news", "compare", "metrics", "--ways", "3",
         "--shots", "2", "3", "--seeds", "1", "2", "--test-limit", "8", "--summarise-only"],
        cwd=copy, check=True, capture_output=True,
    )
    result = json.loads((copy / "metrics" / "compare.json").read_text())
    assert list(result["systems"]) == ["spacy_ner"]
