"""Choose decoding.threshold on a dev split: strict F1 at each threshold, from one set of
predictions (an entity's score does not change what the decoder writes next, so dropping the
entities below a threshold afterwards is what the component does with that threshold).

Each PIPELINE is a trained pipeline (e.g. compare_dev/k5/seed1/cllmfs/model-last) scored on
its own labels, on the same fixed subset of DEV as the compare workflow. The output holds, per
pipeline and threshold, P/R/F1, and the threshold with the best mean F1 over the pipelines.

Usage: python scripts/calibrate.py OUTPUT.json DEV.spacy PIPELINE [PIPELINE ...] [--limit 150]
"""
import argparse
from pathlib import Path

import spacy
import srsly
from spacy.tokens import Span

from compare import test_subset
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import strict_scores, unannotated

THRESHOLDS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def kept(docs, threshold: float):
    """Copies of the predicted docs without the entities scored below the threshold."""
    out = []
    for doc in docs:
        copy = doc.copy()
        copy.ents = [Span(copy, e.start, e.end, e.label_) for e in doc.ents
                     if e._.cllmfs_score is None or e._.cllmfs_score >= threshold]
        out.append(copy)
    return out


def main(args) -> None:
    results = {}
    for path in args.pipelines:
        nlp = spacy.load(path)
        gold = read_docs(args.dev, nlp.vocab)
        gold = [gold[i] for i in test_subset(gold, args.limit)]
        labels = list(nlp.get_pipe("cllmfs_ner").labels)
        predicted = list(nlp.pipe(unannotated(gold, nlp.vocab), batch_size=32))
        results[str(path)] = {
            str(t): strict_scores(gold, kept(predicted, t), labels) for t in THRESHOLDS}
        best = max(THRESHOLDS, key=lambda t: results[str(path)][str(t)]["f1"])
        print(f"{path}: F1 {100 * results[str(path)]['0.0']['f1']:.1f} at 0, "
              f"{100 * results[str(path)][str(best)]['f1']:.1f} at {best}", flush=True)
    mean = {t: sum(r[str(t)]["f1"] for r in results.values()) / len(results) for t in THRESHOLDS}
    best = max(THRESHOLDS, key=lambda t: mean[t])
    summary = {"dev": str(args.dev), "limit": args.limit, "mean_f1": mean, "best": best,
               "pipelines": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, summary)
    print(f"best mean F1 {100 * mean[best]:.1f} at threshold {best} "
          f"(at 0: {100 * mean[0.0]:.1f}); wrote {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("pipelines", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=150)
    main(parser.parse_args())
