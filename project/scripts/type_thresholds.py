"""Probe (issue 35, dev only): per-type answer thresholds chosen from the user's own text.

The shots hold each type far more often (or less often) than the user's text does, and the
trained model's answer rate per type follows the shots (docs/experiments.md, "What training on
the shots changes"). Label-shift correction without gold: per type, the answer threshold among
GRID at which the trained model answers the type in as many held-out own-text sentences as the
shipped adapter does zero-shot (greedy). Held-out: the per-type fallback's draw
(compare.fallback_texts: fallback.N_TEXTS sentences of the split, neither scored, shots nor own
text). Guard: a type the adapter answers in fewer than fallback.MIN_ANSWERS of them keeps the
recipe's threshold. On WNUT-17 dev it changed nothing (docs/experiments.md, "Per-type answer
thresholds from the own text"); it is not part of the recipe.

Usage (project command `probe-type-thresholds`), after compare.py --split dev --own-text 32
--systems cllmfs kept WORK/k<K>/seed<S>/:
  python scripts/type_thresholds.py WORK K SEED OUT.json [--limit 150]
"""
import argparse
import math
import sys
import time
from pathlib import Path

import spacy
import srsly
from spacy.tokens import Span
from spacy.util import filter_spans

from compare import fallback_texts
from spacy_cllmfs import fallback
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import fixed_subset, strict_scores, unannotated

GRID = (0.03, 0.1, 0.3, 0.6)
RECIPE = 0.1


def choose(start, counts, recipe=RECIPE, min_answers=fallback.MIN_ANSWERS):
    """Per label, the grid threshold whose answer count is nearest the adapter's (ties: the
    recipe's, then the nearer to it on a log scale); the recipe's where the adapter answers
    fewer than min_answers (guarded) - and the unguarded choice."""
    guarded, free = {}, {}
    for label, n in start.items():
        order = sorted(counts, key=lambda t: (abs(counts[t][label] - n), t != recipe,
                                              abs(math.log(t / recipe))))
        free[label] = order[0]
        guarded[label] = order[0] if n >= min_answers else recipe
    return guarded, free


def main():
    p = argparse.ArgumentParser()
    p.add_argument("work", type=Path)
    p.add_argument("k", type=int)
    p.add_argument("seed", type=int)
    p.add_argument("out", type=Path)
    p.add_argument("--corpus", type=Path, default=Path("corpus/wnut17"))
    p.add_argument("--split", default="dev")
    p.add_argument("--limit", type=int, default=150)
    p.add_argument("--model", default="model-last")
    a = p.parse_args()
    if a.split == "test":
        raise SystemExit("type_thresholds.py probes a lever on dev (--split dev): settings are "
                         "never chosen on test.")
    started = time.time()
    folder = a.work / f"k{a.k}" / f"seed{a.seed}"
    model = folder / "cllmfs" / a.model
    vocab = spacy.blank("en").vocab
    pool = read_docs(a.corpus / f"{a.split}.spacy", vocab)
    scored = [pool[i] for i in fixed_subset(pool, a.limit)]
    shots = read_docs(folder / "shots.spacy", vocab)
    owns = sorted(folder.glob("own_text*.spacy"))
    if len(owns) != 1:
        raise SystemExit(f"{folder}: expected one own_text*.spacy, found {owns}")
    own = read_docs(owns[0], vocab)
    held = fallback_texts(argparse.Namespace(corpus=a.corpus, own_text_split=a.split), scored,
                          shots, own, a.seed)
    labels = list(srsly.read_json(folder / "labels.json"))

    trained = {t: spacy.load(model, config={"components": {"cllmfs_ner": {
        "decoding": {"answer_threshold": t}}}}) for t in GRID}
    adapter = spacy.blank("en")
    adapter.add_pipe("cllmfs_ner", config=fallback.start_config(trained[RECIPE], labels))
    adapter.initialize()
    start = fallback.answers(adapter, held, labels)
    counts = {t: fallback.answers(trained[t], held, labels) for t in GRID}
    guarded, free = choose(start, counts)
    print(f"k={a.k} seed={a.seed} adapter {start}", flush=True)
    for t in GRID:
        print(f"  t={t}: {counts[t]}", flush=True)
    print(f"  chosen (guarded) {guarded}; unguarded {free}", flush=True)

    needed = sorted({RECIPE, *guarded.values(), *free.values()})
    predicted = {t: list(trained[t].pipe(unannotated(scored, vocab), batch_size=32))
                 for t in needed}

    def composed(choice):
        docs = []
        for i in range(len(scored)):
            doc = predicted[RECIPE][i].copy()
            spans = [Span(doc, e.start, e.end, label=e.label_)
                     for t in sorted(set(choice.values())) for e in predicted[t][i].ents
                     if choice.get(e.label_) == t]
            doc.ents = filter_spans(spans)
            docs.append(doc)
        return docs

    result = {"k": a.k, "seed": a.seed, "labels": labels, "grid": list(GRID),
              "held_out": len(held), "adapter_answers": start,
              "trained_answers": {str(t): counts[t] for t in GRID},
              "chosen_guarded": guarded, "chosen_unguarded": free,
              "recipe": strict_scores(scored, predicted[RECIPE], labels),
              "guarded": strict_scores(scored, composed(guarded), labels),
              "unguarded": strict_scores(scored, composed(free), labels),
              "seconds": round(time.time() - started, 1)}
    srsly.write_json(a.out, result)
    print(f"  F1 recipe {100 * result['recipe']['f1']:.1f} guarded "
          f"{100 * result['guarded']['f1']:.1f} unguarded {100 * result['unguarded']['f1']:.1f}"
          f" ({result['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
