import pytest
import spacy
from spacy.tokens import Doc

from spacy_cllmfs.scoring import aggregate, markdown_table, strict_scores, fixed_subset

NLP = spacy.blank("en")
WORDS = "Ana Ruiz met Bo in Oslo".split()


def doc(tags):
    return Doc(NLP.vocab, words=WORDS, ents=tags)


GOLD = doc(["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"])
# "Ana" alone is a boundary error (strict: wrong), "Bo" is right, "Oslo" has the wrong type.
PRED = doc(["B-PER", "O", "O", "B-PER", "O", "B-ORG"])


def test_strict_micro_and_per_type_scores():
    result = strict_scores([GOLD], [PRED])
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 3)
    assert result["per_type"]["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert result["per_type"]["LOC"]["recall"] == 0.0
    assert result["per_type"]["ORG"]["support"] == 0


def test_labels_restrict_both_sides():
    result = strict_scores([GOLD], [PRED], labels=["PER", "ORG"])
    # gold: 2 PER; predicted: 2 PER + 1 ORG; 1 correct
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 2)
    assert result["f1"] == pytest.approx(0.4)
    assert "LOC" not in result["per_type"]


def test_no_entities_anywhere_scores_zero():
    empty = doc(["O"] * 6)
    assert strict_scores([empty], [empty], labels=["PER"])["f1"] == 0.0


def test_token_mismatch_is_an_error():
    other = Doc(NLP.vocab, words=["x"] * 6)
    with pytest.raises(ValueError, match="tokens differ"):
        strict_scores([GOLD], [other])


def test_aggregate_mean_and_sample_std():
    runs = [
        {"precision": p, "recall": p, "f1": p, "support": 2,
         "per_type": {"PER": {"precision": p, "recall": p, "f1": p, "support": 2}}}
        for p in (0.5, 0.7, 0.9)
    ]
    result = aggregate(runs)
    assert result["f1"] == pytest.approx(0.7)
    assert result["f1_std"] == pytest.approx(0.2)
    assert result["per_type"]["PER"]["f1_std"] == pytest.approx(0.2)
    assert "| x | 3 | 70.0 ± 20.0 |" in markdown_table({"x": result})
    assert aggregate(runs[:1])["f1_std"] == 0.0


def test_fixed_subset_is_fixed_sorted_and_whole_without_a_limit():
    docs = list(range(50))
    chosen = fixed_subset(docs, 10)
    assert len(set(chosen)) == 10 and chosen == sorted(chosen)
    assert all(0 <= i < 50 for i in chosen)
    assert fixed_subset(docs, 10) == chosen  # the same sentences for every system and run
    assert fixed_subset(docs, 0) == fixed_subset(docs, 50) == list(range(50))
