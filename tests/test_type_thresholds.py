"""project/scripts/type_thresholds.py (issue 35's dev probe): which per-type answer threshold
the rule picks from answer counts, and that it refuses the test split."""
import sys

import pytest

from .util import load_script

probe = load_script("type_thresholds")

# WNUT-17 dev, seed 1, K = 10 (docs/experiments.md): texts answered of 96 per threshold
ADAPTER = {"corporation": 8, "creative-work": 2, "person": 38}
TRAINED = {0.03: {"corporation": 7, "creative-work": 9, "person": 33},
           0.1: {"corporation": 7, "creative-work": 8, "person": 33},
           0.3: {"corporation": 6, "creative-work": 6, "person": 33},
           0.6: {"corporation": 6, "creative-work": 4, "person": 30}}


def test_the_guard_keeps_the_recipes_threshold_for_a_type_the_adapter_rarely_answers():
    guarded, free = probe.choose(ADAPTER, TRAINED)
    # creative-work: nearest the adapter's 2 answers at 0.6, but 2 < MIN_ANSWERS (5)
    assert free == {"corporation": 0.1, "creative-work": 0.6, "person": 0.1}
    assert guarded == {"corporation": 0.1, "creative-work": 0.1, "person": 0.1}


def test_the_nearest_count_wins_and_ties_go_to_the_recipe_then_its_neighbour():
    start = {"A": 10, "B": 10, "C": 10}
    counts = {0.03: {"A": 14, "B": 12, "C": 20}, 0.1: {"A": 13, "B": 12, "C": 20},
              0.3: {"A": 10, "B": 12, "C": 12}, 0.6: {"A": 7, "B": 8, "C": 8}}
    guarded, free = probe.choose(start, counts)
    # A: exact at 0.3; B: 12 at three thresholds, 8 at 0.6, all 2 away: the recipe's 0.1;
    # C: 12 at 0.3 and 8 at 0.6, both 2 away: 0.3, nearer 0.1 on a log scale
    assert guarded == free == {"A": 0.3, "B": 0.1, "C": 0.3}


def test_it_refuses_to_choose_on_test(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["type_thresholds.py", str(tmp_path), "5", "1",
                                      str(tmp_path / "out.json"), "--split", "test"])
    with pytest.raises(SystemExit, match="never chosen on test"):
        probe.main()
    assert not (tmp_path / "out.json").exists()
