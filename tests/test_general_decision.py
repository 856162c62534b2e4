"""Issue 34's rule for replacing the shipped general adapter, and the GUM task that feeds it."""
import argparse

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from .util import load_script

decide_general = load_script("decide_general")


def scores(wnut, gum, old, split="dev"):
    """An evaluate_general.py results file: WNUT-17 seeds, GUM, the old five at F1 `old`."""
    results = {"start": "x", "split": split, "template": "ner.v1", "gum": {"f1": gum / 100}}
    results.update({f"wnut17/seed{i}": {"f1": f / 100} for i, f in enumerate(wnut, 1)})
    results.update({f"source/{c}": {"f1": old / 100} for c in decide_general.OLD_FIVE})
    results["source/multiconer"] = {"f1": 0.3}
    return results


def test_better_on_the_unseen_targets_and_close_on_the_old_five_ships():
    shipped = scores([40, 42, 44], 10, 60)
    result = decide_general.decide(scores([46, 48, 50], 20, 59.2), shipped)
    assert result["ship"]
    assert result["unseen"]["candidate"] == pytest.approx((48 + 20) / 2)
    assert result["unseen"]["shipped"] == pytest.approx((42 + 10) / 2)
    assert result["tasks"]["gum"]["difference"] == pytest.approx(10)


def test_more_than_one_point_lost_on_the_old_five_keeps_the_shipped_adapter():
    result = decide_general.decide(scores([46, 48, 50], 20, 58.9), scores([40, 42, 44], 10, 60))
    assert not result["ship"] and "worse on the old five" in result["reason"]


def test_no_better_on_the_unseen_targets_keeps_the_shipped_adapter():
    # WNUT-17 up, GUM down by more: the mean of the two is what counts
    result = decide_general.decide(scores([44, 44, 44], 4, 62), scores([42, 42, 42], 10, 60))
    assert not result["ship"] and "not better on the unseen targets" in result["reason"]


def test_files_of_different_splits_or_without_a_task_are_refused():
    with pytest.raises(SystemExit, match="different splits"):
        decide_general.decide(scores([1], 1, 1, "dev"), scores([1], 1, 1, "test"))
    partial = scores([1], 1, 1)
    del partial["source/re3d"]
    with pytest.raises(SystemExit, match="re3d"):
        decide_general.decide(partial, scores([1], 1, 1))


def test_evaluate_general_scores_gum_with_its_ten_described_types(tmp_path, monkeypatch):
    evaluate_general = load_script("evaluate_general")
    asked = []
    monkeypatch.setattr(evaluate_general, "run", lambda start, template, labels, gold:
                        asked.append((labels, len(gold))) or {"f1": 0.1, "docs_per_second": 1})
    nlp = spacy.blank("en")
    DocBin(docs=[nlp.make_doc(f"Sentence {i} .") for i in range(5)]).to_disk(tmp_path / "dev.spacy")
    args = argparse.Namespace(start="default", output=tmp_path / "out.json", template="ner.v1",
                              tasks=["gum"], split="dev", gum=tmp_path, limit=3, resume=False)
    assert evaluate_general.main(args)["gum"]["f1"] == 0.1
    ((labels, n),) = asked
    assert n == 3 and len(labels) == 10 and "person" in labels and "_about" not in labels
    assert srsly.read_json(tmp_path / "out.json")["gum"]["f1"] == 0.1
