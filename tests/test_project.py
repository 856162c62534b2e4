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

from spacy_cllmfs.fewshot import read_docs

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
            metrics = json.loads((project / "metrics" / f"{domain}_{name}.json").read_text())
            assert {"precision", "recall", "f1", "f1_std", "per_type"} <= set(metrics)
            assert metrics["seeds"] == [1, 2] and len(metrics["runs"]) == 2
            assert 0.0 <= metrics["f1"] <= 1.0
    table = (project / "metrics" / "results.md").read_text()
    assert "| news_trained | 2 |" in table and "| recipes_untrained | 2 |" in table
