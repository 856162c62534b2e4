"""The sample project's commands, run through `spacy project run` on the tiny model."""
import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs import configs as shipped_configs
from spacy_cllmfs.corpus import read_docs

from .util import load_script

pytestmark = pytest.mark.slow  # the project's workflows, in subprocesses

PROJECT = Path(__file__).parent.parent / "project"
COMMANDS = ["sample-data", "convert", "sample", "assemble", "evaluate-untrained",
            "train-sampled", "evaluate-sampled"]


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
             "--vars.config", "configs/cllmfs_smoke.cfg", "--vars.shots", "3", "--vars.seeds", "1 2"],
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
    from spacy_cllmfs.scoring import strict_scores, unannotated

    nlp = spacy.load(project / "training" / "news" / "seed2" / "model-best")
    gold = read_docs(project / "corpus" / "news" / "test.spacy", nlp.vocab)
    bare = unannotated(gold, nlp.vocab)
    expected = strict_scores(gold, list(nlp.pipe(bare)), nlp.get_pipe("cllmfs_ner").labels)
    written = json.loads((project / "metrics" / "trained" / "news.json").read_text())["runs"][1]
    assert written == json.loads(json.dumps(expected))


@pytest.fixture(scope="module")
def compared(project):
    """The compare workflow on the bundled news sample, the tiny model and a short spaCy ner."""
    ner = spacy.util.load_config(project / "configs" / "spacy_ner.cfg")
    ner["training"]["max_steps"], ner["training"]["eval_frequency"] = 20, 10
    ner.to_disk(project / "configs" / "spacy_ner_smoke.cfg")
    settings = ["--vars.compare_config", "configs/cllmfs_smoke.cfg", "--vars.compare_blank_config",
                "cllmfs_smoke", "--vars.ner_config", "spacy_ner_smoke", "--vars.compare_domain",
                "news", "--vars.compare_epochs", "1", "--vars.compare_shots", "2 3",
                "--vars.compare_seeds", "1 2", "--vars.compare_test_limit", "8",
                "--vars.compare_jobs", "2", "--vars.compare_rehearsal", "0"]
    # The workflow's steps but convert-source: without rehearsal the source corpora are not read
    # (the tests have none; test_compare_rehearses_source_sentences_with_their_own_types covers
    # rehearsal).
    steps = srsly.read_yaml(project / "project.yml")["workflows"]["compare"]
    assert steps == ["convert-compare", "convert-source", "compare-systems"]
    for step in ("convert-compare", "compare-systems"):
        subprocess.run([sys.executable, "-m", "spacy", "project", "run", step, str(project),
                        *settings], check=True, capture_output=True)
    return project


def compare_copy(compared, tmp_path, source_project=None):
    """A copy of the compared project (its runs kept, its pipelines not), with the source
    corpora where a test rehearses them."""
    copy = tmp_path / "project"
    shutil.copytree(compared, copy, ignore=shutil.ignore_patterns("training", "untrained"))
    if source_project is not None:
        shutil.copytree(source_project / "corpus" / "source", copy / "corpus" / "source")
    return copy


def smoke_compare(metrics, *flags):
    """compare.py on the smoke configs: cllmfs alone, 3 ways, 2 shots, seed 1, 8 test docs."""
    return [sys.executable, "scripts/compare.py", "configs/cllmfs_smoke.cfg",
            "configs/spacy_ner_smoke.cfg", "corpus/news", "compare", metrics, "--ways", "3",
            "--shots", "2", "--seeds", "1", "--test-limit", "8", "--epochs", "1", "--systems",
            "cllmfs", *flags]


def test_compare_scores_every_system_on_the_same_shots_and_test_docs(compared):
    result = json.loads((compared / "metrics" / "compare.json").read_text())
    systems = ["cllmfs", "cllmfs_blank", "no_contrastive", "no_noise", "general_zero_shot",
               "spacy_ner", "spacy_llm_icl", "zero_shot"]
    assert list(result["systems"]) == systems
    assert result["test_docs"] == 8 and result["shots"] == [2, 3] and result["seeds"] == [1, 2]
    for name in systems:
        data = result["systems"][name]
        assert 0.0 <= data["f1"] <= 1.0 and data["f1_std"] >= 0.0
        # The headline figures are those of the smallest K.
        assert data["f1"] == data["shots"]["2"]["f1"]
        assert set(data["shots"]) == {"2", "3"}
        assert all(data["shots"][k]["seeds"] == [1, 2] for k in ("2", "3"))
        # each seed's scores are kept, so that merge_compare.py can pool seeds across runs
        by_seed = data["shots"]["2"]["by_seed"]
        assert set(by_seed) == {"1", "2"} and by_seed["1"]["sampler_walk"] == 1
        assert data["f1"] == pytest.approx((by_seed["1"]["f1"] + by_seed["2"]["f1"]) / 2)
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


def test_compare_plots_each_trained_systems_loss_and_answer_rate(tmp_path):
    compare_report = load_script("compare_report")
    assert compare_report.smooth([4.0, 2.0, 0.0, 2.0], share=0.5) == [4.0, 3.0, 1.0, 1.0]
    assert compare_report.smooth([3.0]) == [3.0]
    log = tmp_path / "work" / "k5" / "seed2" / "cllmfs" / "log.jsonl"
    log.parent.mkdir(parents=True)
    srsly.write_jsonl(log, [{"update": i, "loss": 1.0 / i, "answer_rate": 0.2,
                             "answer_rate_gold": 0.3} for i in range(1, 30)]
                      + [{"step": 29, "losses": {"cllmfs_ner": 0.1}, "score": 0.5}])
    work, shots, seeds = tmp_path / "work", [5, 10], [1, 2]
    out = tmp_path / "training.png"
    assert compare_report.plot_training(work, shots, seeds, ["cllmfs", "no_noise"], out)
    assert out.read_bytes().startswith(b"\x89PNG")
    # No training log (untrained systems, configs without the JSONL logger): no plot.
    assert not compare_report.plot_training(work, shots, seeds, ["no_noise"], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_merge_compare_takes_each_cell_from_the_summary_with_most_seeds(tmp_path):
    merge = load_script("merge_compare")

    def cell(f1, seeds):
        return {"f1": f1, "f1_std": 0.01, "precision": f1, "recall": f1, "seeds": seeds,
                "seconds": 1.0}

    same = {"data": "wnut17", "split": "test", "ways": 3, "test_docs": 500, "variants": {}}
    a = {**same, "shots": [5, 10], "seeds": [1, 2, 3], "systems": {
        "general_zero_shot": {"shots": {"10": cell(0.40, [1, 2, 3])}},
        "cllmfs": {"shots": {"5": cell(0.38, [1, 2, 3]), "10": cell(0.37, [1, 2, 3])}}}}
    b = {**same, "shots": [10], "seeds": [1, 3], "systems": {
        "general_zero_shot": {"shots": {"10": cell(0.41, [1])}},
        "no_noise": {"shots": {"10": cell(0.30, [1, 3])}},
        "cllmfs": {"shots": {"10": cell(0.35, [1, 2, 3])}}}}
    result = merge.merge([("a", a), ("b", b)])
    systems = result["systems"]
    assert list(systems) == ["cllmfs", "no_noise", "general_zero_shot"]  # compare.py's order
    assert systems["general_zero_shot"]["shots"]["10"]["from"] == ["a"]  # 3 seeds, not 1
    assert systems["cllmfs"]["shots"]["10"]["from"] == ["b"]  # as many seeds: the later file
    assert systems["cllmfs"]["shots"]["5"]["from"] == ["a"]
    assert systems["no_noise"]["f1"] == 0.30 and list(systems["no_noise"]["shots"]) == ["10"]
    assert (result["shots"], result["seeds"], result["ways"]) == ([5, 10], [1, 2, 3], 3)
    assert result["merged_from"] == ["a", "b"]
    with pytest.raises(SystemExit, match="'ways' is 6 against 3"):
        merge.merge([("a", a), ("c", {**b, "ways": 6})])
    with pytest.raises(SystemExit, match="'test_docs'"):
        merge.merge([("a", a), ("c", {k: v for k, v in b.items() if k != "test_docs"})])


def test_merge_compare_pools_the_seeds_that_summaries_keep_one_by_one(tmp_path):
    """A cell's seeds can come from several machines: summaries that keep each seed's scores
    (by_seed) are pooled, a seed run in two of them counting once, from the later file."""
    merge, report = load_script("merge_compare"), load_script("compare_report")

    def seed(f1):
        return {"precision": f1, "recall": f1, "f1": f1, "support": 50, "seconds": 10.0,
                "sampler_walk": 1}

    same = {"data": "gum", "split": "test", "ways": 10, "test_docs": 491, "variants": {}}
    a = {**same, "shots": [5], "seeds": [1, 2], "systems": {
        "cllmfs": {"shots": {"5": report.cell({1: seed(0.30), 2: seed(0.20)})}}}}
    b = {**same, "shots": [5], "seeds": [2, 3], "systems": {
        "cllmfs": {"shots": {"5": report.cell({2: seed(0.26), 3: seed(0.28)})}}}}
    pooled = merge.merge([("a", a), ("b", b)])["systems"]["cllmfs"]["shots"]["5"]
    assert pooled["seeds"] == [1, 2, 3] and pooled["from"] == ["a", "b"]
    assert pooled["by_seed"]["2"]["f1"] == 0.26  # b is the later file
    assert [pooled["by_seed"][s]["from"] for s in "123"] == ["a", "b", "b"]
    assert pooled["f1"] == pytest.approx(0.28) and pooled["f1_std"] == pytest.approx(0.02)
    assert pooled["seconds"] == 30.0
    # In the other order a is the later file (the files are named in seed order); a summary
    # whose seeds are all overridden is not named.
    other = merge.merge([("b", b), ("a", a)])["systems"]["cllmfs"]["shots"]["5"]
    assert other["by_seed"]["2"]["f1"] == 0.20 and other["from"] == ["a", "b"]
    c = {**same, "shots": [5], "seeds": [2], "systems": {
        "cllmfs": {"shots": {"5": report.cell({2: seed(0.10)})}}}}
    assert merge.merge([("c", c), ("a", a)])["systems"]["cllmfs"]["shots"]["5"]["from"] == ["a"]
    # A merged summary merges again: a new run's seed joins, the others keep their files.
    merged = merge.merge([("a", a), ("b", b)])
    d = {**same, "shots": [5], "seeds": [4], "systems": {
        "cllmfs": {"shots": {"5": report.cell({4: seed(0.32)})}}}}
    again = merge.merge([("results", merged), ("d", d)])
    cell4 = again["systems"]["cllmfs"]["shots"]["5"]
    assert cell4["seeds"] == [1, 2, 3, 4] and cell4["from"] == ["a", "b", "d"]
    assert cell4["f1"] == pytest.approx(0.29) and again["merged_from"] == ["results", "d"]
    # The table shows the spread over several seeds; one seed has none, and is named.
    assert report.table_cell(cell4).startswith("29.0 ± ") and "; 4 seeds)" in report.table_cell(cell4)
    assert report.table_cell(d["systems"]["cllmfs"]["shots"]["5"]) == "32.0 (P 32.0, R 32.0; seed 4 only)"


def test_merge_compare_keeps_the_untouched_rows_when_the_recipe_changes(tmp_path):
    """The recipe's settings (rehearsal, own text, ...) need agree only between summaries that
    hold a system trained with it: FILE:SYSTEMS takes the baselines from the published table
    and the recipe's rows from new runs; mixing two recipes' trained rows stops, naming the
    setting."""
    merge, report = load_script("merge_compare"), load_script("compare_report")

    def seed(f1):
        return {"precision": f1, "recall": f1, "f1": f1, "support": 50, "seconds": 10.0}

    same = {"data": "gum", "split": "test", "ways": 10, "test_docs": 491, "variants": {},
            "rehearsal": 32, "own_text": 32}
    published = {**same, "shots": [5], "seeds": [1, 2], "systems": {
        "cllmfs": {"shots": {"5": report.cell({1: seed(0.25), 2: seed(0.24)})}},
        "spacy_ner": {"shots": {"5": report.cell({1: seed(0.06), 2: seed(0.05)})}}}}
    new = {**same, "if_rejected": "shots", "shots": [5], "seeds": [1, 2], "systems": {
        "cllmfs": {"shots": {"5": report.cell({1: seed(0.27), 2: seed(0.26)})}}}}
    with pytest.raises(SystemExit, match="'if_rejected' is 'shots' against None"):
        merge.merge([("published", published), ("new", new)])
    baselines = merge.only(published, ["spacy_ner"])
    result = merge.merge([("published", baselines), ("new", new)])
    assert list(result["systems"]) == ["cllmfs", "spacy_ner"]
    assert result["systems"]["cllmfs"]["shots"]["5"]["from"] == ["new"]
    assert result["systems"]["cllmfs"]["f1"] == pytest.approx(0.265)
    assert result["systems"]["spacy_ner"]["shots"]["5"]["from"] == ["published"]
    assert result["if_rejected"] == "shots" and result["rehearsal"] == 32
    # the other settings still have to agree, trained rows or not
    with pytest.raises(SystemExit, match="'test_docs'"):
        merge.merge([("published", {**baselines, "test_docs": 500}), ("new", new)])
    with pytest.raises(SystemExit, match="Not in the summary: zero_shot"):
        merge.only(published, ["zero_shot"])
    # on the command line: FILE:SYSTEM,SYSTEM
    srsly.write_json(tmp_path / "published.json", published)
    srsly.write_json(tmp_path / "new.json", new)
    name, read = merge.read(f"{tmp_path / 'published.json'}:spacy_ner")
    assert name == str(tmp_path / "published.json") and list(read["systems"]) == ["spacy_ner"]
    assert list(merge.read(str(tmp_path / "new.json"))[1]["systems"]) == ["cllmfs"]
    with pytest.raises(SystemExit, match="No summary at"):
        merge.read(str(tmp_path / "none.json:cllmfs"))


def test_compare_decodes_the_untrained_systems_greedily():
    """The recipe's thresholds (the shipped fewshot.cfg) are for adapters trained on shots: the
    untrained systems are reset to greedy decoding, the trained ones keep them."""
    compare = load_script("compare")
    configs = Path(__file__).resolve().parents[1] / "project" / "configs"
    args = argparse.Namespace(config=shipped_configs.path("fewshot"), variants={})
    greedy = ["--components.cllmfs_ner.decoding.answer_threshold", "0.5",
              "--components.cllmfs_ner.decoding.threshold", "0.0"]
    assert compare.overrides_of(args, "general_zero_shot") == greedy
    assert compare.overrides_of(args, "zero_shot")[2:] == greedy
    assert compare.overrides_of(args, "cllmfs") == []
    assert compare.overrides_of(args, "no_contrastive") == ["--components.cllmfs_ner.loss.weight", "0"]
    decoding = spacy.util.load_config(args.config)["components"]["cllmfs_ner"]["decoding"]
    assert decoding["answer_threshold"] < 0.5 and decoding["threshold"] > 0
    # A config without the thresholds (Decoding.v1) gets no override it could not take.
    args.config = configs / "cllmfs_smoke.cfg"
    assert compare.overrides_of(args, "general_zero_shot") == []


def test_compare_runs_are_keyed_by_what_determines_them(compared, tmp_path):
    """After a config change, the runs of the systems that use the config are not reused;
    spaCy's ner, whose config did not change, keeps its runs. A comment is not a change."""
    copy = compare_copy(compared, tmp_path)
    config = copy / "configs" / "cllmfs_smoke.cfg"
    text = config.read_text()
    assert "weight = 0.1" in text

    def summarised():
        subprocess.run(
            [sys.executable, "scripts/compare.py", "configs/cllmfs_smoke.cfg",
             "configs/spacy_ner_smoke.cfg", "corpus/news", "compare", "metrics", "--ways", "3",
             "--shots", "2", "3", "--seeds", "1", "2", "--test-limit", "8", "--summarise-only",
             # as the compared fixture ran them
             "--blank-config", "configs/cllmfs_smoke.cfg", "--descriptions",
             "configs/news_types.json", "--epochs", "1"],
            cwd=copy, check=True, capture_output=True,
        )
        return list(json.loads((copy / "metrics" / "compare.json").read_text())["systems"])

    everything = summarised()
    assert "cllmfs" in everything and "spacy_ner" in everything
    config.write_text("# a comment added\n" + text.replace("weight = 0.1", "# kept\nweight = 0.1"))
    assert summarised() == everything
    config.write_text(text.replace("weight = 0.1", "weight = 0.2"))
    assert summarised() == ["spacy_ner"]


def test_compare_reuses_an_untrained_run_for_a_seed_that_drew_the_same_types(compared, tmp_path):
    """The news sample has three types, so 3-way sets of every seed ask the same types: the
    untrained systems (no shots seen) are scored once and the run serves the other seeds. A run
    on other types is not reused."""
    copy = compare_copy(compared, tmp_path)
    runs = copy / "compare" / "runs"
    for path in runs.glob("general_zero_shot_k*_seed2-*.json"):
        path.unlink()
    shutil.rmtree(copy / "compare" / "k2" / "seed2" / "general_zero_shot")

    def run_seed2():
        subprocess.run(
            [sys.executable, "scripts/compare.py", "configs/cllmfs_smoke.cfg",
             "configs/spacy_ner_smoke.cfg", "corpus/news", "compare", "metrics", "--ways", "3",
             "--shots", "2", "--seeds", "2", "--test-limit", "8", "--systems",
             "general_zero_shot", "--blank-config", "configs/cllmfs_smoke.cfg",
             "--descriptions", "configs/news_types.json", "--epochs", "1"],
            cwd=copy, check=True, capture_output=True,
        )
        [path] = runs.glob("general_zero_shot_k2_seed2-*.json")
        return json.loads(path.read_text())

    reused = run_seed2()
    assert "_seed1-" in reused["reused_from"] and reused["seed"] == 2
    source = json.loads((runs / reused["reused_from"]).read_text())
    assert (reused["f1"], reused["types"]) == (source["f1"], source["types"])
    assert not (copy / "compare" / "k2" / "seed2" / "general_zero_shot").exists()  # not scored
    for path in runs.glob("general_zero_shot_k*-*.json"):  # runs on other types only
        other = json.loads(path.read_text())
        path.write_text(json.dumps({**other, "types": other["types"][:2]}))
    for path in runs.glob("general_zero_shot_k2_seed2-*.json"):
        path.unlink()
    scored = run_seed2()
    assert "reused_from" not in scored and scored["f1"] == source["f1"]
    assert (copy / "compare" / "k2" / "seed2" / "general_zero_shot").is_dir()


def test_compare_wants_a_system_or_a_variant(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/compare.py", "configs/cllmfs_smoke.cfg",
         "configs/spacy_ner_smoke.cfg", "corpus/news", str(tmp_path / "w"), str(tmp_path / "m"),
         "--ways", "3", "--shots", "2", "--seeds", "1", "--systems"], cwd=PROJECT,
        capture_output=True, text=True)
    assert done.returncode != 0 and "No system to run" in done.stderr


# Invented sentences in each source corpus's format (as in test_convert_source.py).
SOURCE_FILES = {
    "wikigold/wikigold.conll": "".join(
        f"-DOCSTART- O\n\nAna{i} I-PER\nmet O\nBo I-PER\nof O\nAcme I-ORG\nin O\nOslo I-LOC\n\n"
        for i in range(10)),
    "sec-filings/train.conll": "The DT - O\nLender NN - I-ORG\npays VBZ - O\n\nNothing NN - O\n\n",
    "sec-filings/test.conll": "Acme NNP - I-ORG\nLtd NNP - I-ORG\n\n",
    "anem/train.conll": "Heart 0 5 B-Organ\ncells 6 11 B-Cell\n\n",
    "anem/test.conll": "Lung 0 4 B-Organ\n\n",
    "uner-ewt/dev.iob2": "1\tAna\tB-PER\t-\t-\n2\tflew\tO\t-\t-\n\n",
    "uner-ewt/test.iob2": "1\tBo\tB-PER\t-\t-\n\n",
}
SOURCE_COMMANDS = ["convert-source", "train-source", "evaluate-source", "card-source"]


@pytest.fixture(scope="module")
def source_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("source_project")
    shutil.copy(PROJECT / "project.yml", root / "project.yml")
    for name in ("configs", "scripts"):
        shutil.copytree(PROJECT / name, root / name)
    for name, text in SOURCE_FILES.items():
        (root / "assets" / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "assets" / "source" / name).write_text(text, encoding="utf8")
    for command in SOURCE_COMMANDS:
        subprocess.run(
            [sys.executable, "-m", "spacy", "project", "run", command, str(root),
             "--vars.source_config", "source_smoke"],
            check=True, capture_output=True,
        )
    return root


def test_the_source_workflow_trains_scores_and_writes_a_card(source_project):
    root = source_project
    nlp = spacy.load(root / "training" / "source" / "model-last")
    pipe = nlp.get_pipe("cllmfs_ner")
    # every corpus's types, with the project's descriptions, are the component's labels
    assert set(pipe.labels) == {"PER", "ORG", "LOC", "Organ", "Cell"}
    assert pipe.label_descriptions["Organ"] == "organs, such as the liver, heart or lung"
    assert pipe.rows.absent_types == 2 and pipe.rows.vary_names
    log = list(srsly.read_jsonl(root / "training" / "source" / "log.jsonl"))
    evaluations = [r for r in log if "step" in r]
    assert [r["step"] for r in evaluations] == [0, 2, 4]
    assert all(r["losses"]["cllmfs_ner"] >= 0 for r in evaluations)
    # and a line per update of the component: its loss and answer rates
    updates = [r for r in log if "update" in r]
    assert [r["update"] for r in updates] == [1, 2, 3, 4, 5]  # spaCy updates at steps 0 to 4
    assert all(r["loss"] > 0 and 0 <= r["answer_rate"] <= 1 and r["rows"] > 0 for r in updates)
    scores = srsly.read_json(root / "metrics" / "source" / "scores.json")
    assert {"source/wikigold", "source/sec", "source/anem", "source/uner", "news"} <= set(scores)
    # every 5th of 10 documents is held out, and --split test scores one half of those 2
    assert scores["source/wikigold"]["docs"] == 1
    assert scores["source/anem"]["labels"] == {"Cell": "cells and cell types, such as "
                                               "lymphocytes or neurons",
                                               "Organ": "organs, such as the liver, heart or lung"}
    card = json.loads((root / "training" / "source" / "model-last" / "cllmfs_ner" / "adapter"
                       / "cllmfs.json").read_text())
    assert card["template"] == "ner.v1" and card["training"]["steps"] == 4
    assert card["data"]["wikigold"]["train"] == 8 and "CC-BY 4.0" in card["data"]["wikigold"]["licence"]
    assert (root / "metrics" / "source" / "loss.png").stat().st_size > 1000
    assert "| source/sec |" in (root / "metrics" / "source" / "card.md").read_text()


def test_chunked_source_training_resumes_from_the_last_finished_chunk(source_project, tmp_path):
    """scripts/train_source.py: the config's steps in chunks, each from the one before's
    adapter with the learning rate where it stopped; a second run goes on from the last
    finished chunk."""
    root, out = source_project, tmp_path / "chunked"
    command = [sys.executable, "scripts/train_source.py", "configs/source_smoke.cfg", str(out),
               "--chunk-steps", "2", "--paths.train", "corpus/source/train.spacy",
               "--paths.dev", "corpus/source/dev.spacy", "--paths.labels",
               "corpus/source/labels.json"]
    first = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "chunk 1 of 2" in first.stdout and "chunk 2 of 2" in first.stdout
    state = srsly.read_json(out / "chunks.json")
    assert state["plan"] == [[0, 2], [2, 2]] and len(state["done"]) == 2
    second = spacy.util.load_config(out / "chunk1" / "model-last" / "config.cfg")
    model = second["components"]["cllmfs_ner"]["model"]
    assert model["start"] == str(out / "chunk0" / "model-last" / "cllmfs_ner" / "adapter")
    rate = second["training"]["optimizer"]["learn_rate"]
    assert rate["@schedules"] == "spacy_cllmfs.resumed_warmup_linear.v1" and rate["done_steps"] == 2
    assert second["system"]["seed"] == 1
    nlp = spacy.load(out / "model-last")
    assert set(nlp.get_pipe("cllmfs_ner").labels) == {"PER", "ORG", "LOC", "Organ", "Cell"}
    log = list(srsly.read_jsonl(out / "log.jsonl"))
    assert [r["step"] for r in log if "step" in r] == [0, 2, 2, 4]
    assert [r["update"] for r in log if "update" in r] == [1, 2, 3, 4, 5, 6]
    # killed in the second chunk: the next run makes that chunk alone
    srsly.write_json(out / "chunks.json", {**state, "done": state["done"][:1]})
    shutil.rmtree(out / "chunk1")
    again = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "chunk 1 of 2" not in again.stdout and "chunk 2 of 2" in again.stdout
    assert (out / "chunk1" / "model-last").is_dir()
    # another plan for the same folder is refused
    other = subprocess.run([*command[:5], "3", *command[6:]], cwd=root, capture_output=True,
                           text=True)
    assert other.returncode != 0 and "other chunks" in other.stderr


def test_evaluate_general_keeps_the_dev_and_test_halves_of_a_heldout_split_apart():
    evaluate_general = load_script("evaluate_general")
    for n in (1, 2, 7, 140):
        docs = [f"sentence {i}" for i in range(n)]
        dev, test = (evaluate_general.heldout_half(docs, split) for split in ("dev", "test"))
        assert not set(dev) & set(test) and sorted(dev + test) == sorted(docs)
        assert len(dev) == n // 2 and dev == sorted(dev, key=docs.index)  # in corpus order
        assert test == sorted(test, key=docs.index)
    assert evaluate_general.heldout_half(docs, "dev") == dev  # the same halves every time


def test_compare_rehearses_source_sentences_with_their_own_types(compared, source_project, tmp_path):
    """--rehearsal adds source-corpus sentences, with their corpus's types, to the training set
    of the scheduled systems only, and keys their runs apart from the runs without it."""
    copy = compare_copy(compared, tmp_path, source_project)
    args = smoke_compare("metrics_rehearsal", "--rehearsal", "3", "--rehearsal-corpus",
                         "corpus/source/train.spacy")
    subprocess.run(args, cwd=copy, check=True, capture_output=True)
    vocab = spacy.blank("en").vocab
    work = copy / "compare" / "k2" / "seed1"
    shots = read_docs(work / "shots.spacy", vocab)
    trained_on = read_docs(work / "shots_rehearsal3.spacy", vocab)
    assert [d.text for d in trained_on[: len(shots)]] == [d.text for d in shots]
    rehearsed = trained_on[len(shots):]
    assert len(rehearsed) == 3 and all("cllmfs_types" in d.user_data for d in rehearsed)
    source_texts = {d.text for d in read_docs(copy / "corpus/source/train.spacy", vocab)}
    assert {d.text for d in rehearsed} <= source_texts
    runs = sorted((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json"))
    assert len(runs) == 2  # the run without rehearsal (the fixture's) is kept apart
    result = json.loads((copy / "metrics_rehearsal" / "compare.json").read_text())
    assert result["rehearsal"] == 3 and result["systems"]["cllmfs"]["shots"]["2"]["seeds"] == [1]
    # an impossible request is an error that names the problem
    too_many = [*args[:-3], "100000", *args[-2:]]
    out = subprocess.run(too_many, cwd=copy, capture_output=True, text=True)
    assert out.returncode != 0 and "--rehearsal 100000" in out.stderr


def test_compare_rehearses_the_users_own_text_labelled_by_the_starting_adapter(compared,
                                                                               tmp_path):
    """--own-text N: N sentences of the scored split that are neither scored nor shots,
    labelled zero-shot on the seed's types, take the place of the source rehearsal; the runs
    are keyed apart; asking for it always (--own-text-min-recall 0) with --rehearsal, or from a
    split that is all scored, is an error that names the problem. With the check on, a model
    that finds too few of the shots' entities (the untrained tiny one) labels nothing, and the
    run says what it trained with."""
    compare = load_script("compare")
    copy = compare_copy(compared, tmp_path)
    args = smoke_compare("metrics_own", "--own-text", "3", "--fallback", "on")
    before = set((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json"))
    checked = subprocess.run(args, cwd=copy, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr[-2000:]
    work = copy / "compare" / "k2" / "seed1"
    [check] = work.glob("own_text3-test-*.json")
    assert srsly.read_json(check) == {"shots_recall": 0.0}
    assert not list(work.glob("own_text3-*.spacy"))
    [run] = set((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json")) - before
    assert srsly.read_json(run)["rehearsal_used"] == "none"
    assert srsly.read_json(run)["shots_recall"] == 0.0
    run.unlink()
    args += ["--own-text-min-recall", "0"]
    before = set((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json"))
    done = subprocess.run(args, cwd=copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    [run] = set((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json")) - before
    vocab = spacy.blank("en").vocab
    [written] = work.glob("own_text3-test-*.spacy")
    own = read_docs(written, vocab)
    test = read_docs(copy / "corpus/news/test.spacy", vocab)
    scored = {test[i].text for i in compare.fixed_subset(test, 8)}
    shots = read_docs(work / "shots.spacy", vocab)
    assert len(own) == 3 and {d.text for d in own} <= {d.text for d in test} - scored
    labels = srsly.read_json(work / "labels.json")
    assert all(set(d.user_data["cllmfs_types"]) == set(labels) for d in own)
    trained_on = read_docs(work / "shots_rehearsal3.spacy", vocab)
    assert [d.text for d in trained_on] == [d.text for d in [*shots, *own]]
    runs = sorted((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json"))
    assert len(runs) == 2  # the fixture's run without it is kept apart
    result = json.loads((copy / "metrics_own" / "compare.json").read_text())
    assert result["own_text"] == 3 and result["own_text_split"] == "test"
    assert result["fallback"] == "on"
    # the per-type fallback, decided on the split's other sentences (not scored, shots, own)
    record = srsly.read_json(run)
    pool = {d.text for d in test} - scored - {d.text for d in [*shots, *own]}
    counts = record["fallback_answers"]
    assert counts["texts"] == min(96, len(pool)) > 0
    assert set(counts["start"]) == set(counts["trained"]) == set(labels)
    assert record["fallback"] == compare.fallback.flag(counts["start"], counts["trained"])
    off = subprocess.run([*args, "--fallback", "off"], cwd=copy, capture_output=True, text=True)
    assert off.returncode == 0, off.stderr[-2000:]
    [run_off] = set((copy / "compare" / "runs").glob("cllmfs_k2_seed1-*.json")) - set(runs)
    assert "fallback" not in srsly.read_json(run_off)  # keyed apart, as the earlier recipe
    both = subprocess.run([*args, "--rehearsal", "3"], cwd=copy, capture_output=True, text=True)
    assert both.returncode != 0 and "give one of them" in both.stderr
    everything = [*args[:args.index("--test-limit")], "--test-limit", "0",
                  *args[args.index("--test-limit") + 2:]]
    out = subprocess.run(everything, cwd=copy, capture_output=True, text=True)
    assert out.returncode != 0 and "--own-text-split" in out.stderr


def test_compare_trains_on_the_shots_alone_where_the_own_text_is_rejected(compared,
                                                                         source_project,
                                                                         tmp_path):
    """--own-text with --rehearsal: where the starting adapter's labels are rejected (the
    untrained tiny model finds none of the shots' entities), the shots train alone (the
    default, --if-rejected shots) or with the source sentences (--if-rejected source); the two
    runs are keyed apart, and each says what it trained with."""
    copy = compare_copy(compared, tmp_path, source_project)
    args = smoke_compare("metrics_rejected", "--own-text", "3", "--rehearsal", "3",
                         "--rehearsal-corpus", "corpus/source/train.spacy")
    runs = copy / "compare" / "runs"
    work = copy / "compare" / "k2" / "seed1"
    used = {}
    for choice, flags in (("shots", []), ("source", ["--if-rejected", "source"])):  # default
        before = set(runs.glob("cllmfs_k2_seed1-*.json"))
        done = subprocess.run([*args, *flags], cwd=copy, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        [run] = set(runs.glob("cllmfs_k2_seed1-*.json")) - before
        used[choice] = srsly.read_json(run)
        summary = srsly.read_json(copy / "metrics_rejected" / "compare.json")
        assert summary["if_rejected"] == choice
        # the shots with the source sentences are written for the run that trains on them
        assert (work / "shots_rehearsal3.spacy").exists() == (choice == "source")
    assert used["source"]["rehearsal_used"] == "source"
    assert used["shots"]["rehearsal_used"] == "none"
    assert used["source"]["shots_recall"] == used["shots"]["shots_recall"] == 0.0
    assert used["source"]["key"] != used["shots"]["key"]


def test_train_cost_trains_each_variant_and_scores_it_on_held_out_sentences(source_project,
                                                                            tmp_path):
    """scripts/train_cost.py: one `spacy train` per variant on the same N-way K-shot set, each
    pipeline scored on the same held-out sentences; `rows.absent_types = 0` asks only the types
    a sentence has, so its updates hold fewer rows than the recipe's (every type)."""
    config = spacy.util.load_config(shipped_configs.path("fewshot"))
    model = config["components"]["cllmfs_ner"]["model"]
    model["start"] = "blank"
    model["base_model"] = {"@misc": "spacy_cllmfs.TinyLlama.v1"}
    config["paths"]["log"] = str(tmp_path / "unused.jsonl")
    config.to_disk(tmp_path / "fewshot_tiny.cfg")
    out = tmp_path / "cost.json"
    subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "train_cost.py"),
         str(tmp_path / "fewshot_tiny.cfg"), str(source_project / "corpus" / "source"), str(out),
         "--corpora", "anem", "wikigold", "--ways", "5", "--shots", "1", "--seed", "1",
         "--epochs", "1", "--threads", "1", "--pass-tokens", "512", "--variant", "recipe",
         "--variant", "present=--components.cllmfs_ner.rows.absent_types=0",
         "--eval-limit", "2"],
        check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert set(result["types"]) == {"PER", "ORG", "LOC", "Organ", "Cell"}
    recipe, present = result["runs"]
    assert (recipe["variant"], present["variant"]) == ("recipe", "present")
    assert present["overrides"] == ["--components.cllmfs_ner.rows.absent_types", "0"]
    # the schedule's floor of 20 steps; spaCy updates at steps 0 to 20
    assert result["steps"] == 20 and recipe["updates"] == present["updates"] == 21
    # every sentence asked all 5 types, against only the types it has (2 or 3 of them)
    assert recipe["rows_per_update"] == 2 * 5
    assert 2 * 2 <= present["rows_per_update"] < recipe["rows_per_update"]
    for run in result["runs"]:
        # wikigold's 2 held-out sentences and AnEM's one
        assert run["heldout_docs"] == 3 and 0 <= run["heldout_f1"] <= 1
    # --rescore scores the same pipelines again without training: the same figures
    subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "train_cost.py"),
         str(tmp_path / "fewshot_tiny.cfg"), str(source_project / "corpus" / "source"), str(out),
         "--corpora", "anem", "wikigold", "--threads", "1", "--eval-limit", "2", "--rescore"],
        check=True, capture_output=True)
    again = json.loads(out.read_text())
    assert [r["heldout_f1"] for r in again["runs"]] == [r["heldout_f1"] for r in result["runs"]]
    assert [r["seconds"] for r in again["runs"]] == [r["seconds"] for r in result["runs"]]
    bad = subprocess.run([sys.executable, str(PROJECT / "scripts" / "train_cost.py"),
                          str(tmp_path / "fewshot_tiny.cfg"), "corpus", str(out),
                          "--variant", "x=absent_types=0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--variant wants NAME" in bad.stderr


def test_evaluate_general_scores_what_it_is_asked_unless_resuming(tmp_path, monkeypatch):
    """A results file already on disk does not stop a run from scoring: only --resume keeps
    its results (for the same adapter, split and template)."""
    evaluate_general = load_script("evaluate_general")
    calls = []

    def fake_run(start, template, labels, gold, batch_size=32):
        calls.append(len(gold))
        return {"f1": 0.5, "docs_per_second": 1.0}

    monkeypatch.setattr(evaluate_general, "run", fake_run)
    news = tmp_path / "news"
    news.mkdir()
    nlp = spacy.blank("en")
    DocBin(docs=[nlp.make_doc("Ana met Bo .")]).to_disk(news / "dev.spacy")
    out = tmp_path / "scores.json"
    srsly.write_json(out, {"start": "default", "split": "dev", "template": "ner.v1",
                           "news": {"f1": 0.99, "docs": 100}})
    args = argparse.Namespace(start="default", output=out, template="ner.v1", tasks=["news"],
                              split="dev", news=news, resume=False)
    assert evaluate_general.main(args)["news"]["f1"] == 0.5 and calls == [1]
    srsly.write_json(out, {**srsly.read_json(out), "news": {"f1": 0.99}})
    args.resume = True
    assert evaluate_general.main(args)["news"]["f1"] == 0.99 and calls == [1]
    args.template = "ner.v2"  # another run: scored anew even with --resume
    assert evaluate_general.main(args)["news"]["f1"] == 0.5 and calls == [1, 1]


def test_publish_copies_the_current_results_and_files_gpu_runs_apart(tmp_path):
    publish = load_script("publish")
    metrics, results = tmp_path / "metrics", tmp_path / "results"
    (metrics / "gum").mkdir(parents=True)
    (metrics / "compare.md").write_text("| table |")
    (metrics / "gum" / "compare.json").write_text("{}")
    (metrics / "wnut17").mkdir()
    (metrics / "wnut17" / "compare.png").write_bytes(b"png")
    (metrics / "training.log").write_text("not a result")
    (metrics / "benchmark.json").write_text(json.dumps({"machine": "x86_64, device cuda:0 (H200)"}))
    (metrics / "gpu").mkdir()
    (metrics / "gpu" / "NVIDIA-H200.json").write_text("{}")
    assert sorted(publish.main(metrics, results)) == ["compare.md", "gpu/NVIDIA-H200.json",
                                                      "gpu/benchmark.json", "gum/compare.json",
                                                      "wnut17/compare.png"]
    assert not (results / "training.log").exists()


def test_the_gpu_benchmark_runs_on_a_cpu_with_a_small_shape(project, monkeypatch, tmp_path):
    """benchmark_gpu.py, as the GPU runs it, on the CPU with the 2-layer shape and the bundled
    sample: every figure is there, and the training step's FLOPs are at least a forward and a
    backward pass through the frozen weights' matrix products."""
    monkeypatch.chdir(project)
    benchmark_gpu = load_script("benchmark_gpu")
    result = benchmark_gpu.main(tmp_path, None, 6, -1, ["float32"], {"batch_size": 512},
                                "tiny", 6, 1, 2, 0.0)
    (written,) = tmp_path.glob("*.json")
    assert json.loads(written.read_text())["device"] == result["device"]
    assert result["device"].startswith("CPU")
    smollm2 = result["smollm2"]["float32"]
    assert smollm2["docs"] == 6 and smollm2["docs_per_s"] > 0
    assert 0 < smollm2["pipe_over_forward"] < 1, "the decoder reads more than the texts"
    big = result["big_model"]
    shape = benchmark_gpu.SHAPES["tiny"]
    layer = 4 * shape["hidden_size"] ** 2 + 3 * shape["hidden_size"] * shape["intermediate_size"]
    assert big["training"]["flops_per_token"] > 4 * shape["num_hidden_layers"] * layer
    assert big["training"]["mfu"] is None, "no peak is known for a CPU"
    assert 0 < big["trainable"] < big["parameters"]
    assert big["pipe"]["docs"] == 6
