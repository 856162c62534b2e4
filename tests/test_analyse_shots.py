"""scripts/analyse_shots.py's counts: what training changed, entity by entity, on hand-made
documents (the counts are checked by hand)."""
import spacy
from spacy.tokens import Span

from .util import load_script

analyse_shots = load_script("analyse_shots")
nlp = spacy.blank("en")

# Written for these tests: (text, [(start token, end token, label)])
TEXTS = ["Ann met Bob in Paris", "Carl left Rome today", "Nothing to see here"]


def docs(entities):
    out = []
    for text, ents in zip(TEXTS, entities):
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
        out.append(doc)
    return out


GOLD = docs([[(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")], [(0, 1, "PER"), (2, 3, "LOC")], []])
# zero-shot finds Ann, Bob, Carl and calls "today" a place; trained finds Ann, Paris, Rome,
# calls "Nothing" a person, and loses Bob and Carl
ZERO_SHOT = docs([[(0, 1, "PER"), (2, 3, "PER")], [(0, 1, "PER"), (3, 4, "LOC")], []])
TRAINED = docs([[(0, 1, "PER"), (4, 5, "LOC")], [(2, 3, "LOC")], [(0, 1, "PER")]])


def test_analyse_counts_what_training_lost_and_gained_per_type_and_in_all():
    report = analyse_shots.analyse(GOLD, {"zero_shot": ZERO_SHOT, "trained": TRAINED},
                                   ["PER", "LOC"])
    per, loc, everything = (report["types"][k] for k in ("PER", "LOC", "all"))
    assert per == {"gold": 3, "zero_shot_tp": 3, "trained_tp": 1, "lost": 2, "gained": 0,
                   "zero_shot_fp": 0, "trained_fp": 1}
    assert loc == {"gold": 2, "zero_shot_tp": 0, "trained_tp": 2, "lost": 0, "gained": 2,
                   "zero_shot_fp": 1, "trained_fp": 0}
    assert everything == {k: per[k] + loc[k] for k in per}


def test_the_answer_rate_is_the_share_of_sentence_type_questions_answered():
    report = analyse_shots.analyse(GOLD, {"zero_shot": ZERO_SHOT, "trained": TRAINED},
                                   ["PER", "LOC"])
    # 3 sentences x 2 types: gold answers 4, zero-shot 3, trained 4
    assert report["answer_rate"] == {"zero_shot": 0.5, "trained": 0.667, "gold": 0.667}
    assert analyse_shots.answer_rate([], ["PER"]) == 0.0


def test_held_out_sentences_hold_the_types_and_are_never_shots():
    shots = GOLD[:1]
    drawn = analyse_shots.held_out(GOLD, shots, {"LOC"}, 5, seed=0)
    assert [d.text for d in drawn] == [TEXTS[1]]  # the shot and the entity-free one are out
    assert analyse_shots.held_out(GOLD, shots, {"ORG"}, 5, seed=0) == []
