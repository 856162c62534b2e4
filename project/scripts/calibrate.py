"""Choose decoding.answer_threshold and decoding.threshold on a dev split: strict F1 at each
pair. Each answer threshold (the probability of opening an entity, against ending the answer,
at or above which a row opens one; 0.5 is plain greedy) is a decoding of its own; the entity
thresholds are applied to its predictions afterwards (an entity's score does not change what the
decoder writes next, so dropping the entities below a threshold afterwards is what the component
does with that threshold).

Each PIPELINE is a trained pipeline (e.g. compare_dev/k5/seed1/cllmfs/model-last) scored on
its own labels, on the same fixed subset of DEV as the compare workflow. The output holds, per
pipeline, answer threshold and threshold, P/R/F1, and the pair with the best mean F1 over the
pipelines.

Usage: python scripts/calibrate.py OUTPUT.json DEV.spacy PIPELINE [PIPELINE ...] [--limit 150]
       [--answer-thresholds 0.5 0.4 0.3]
"""
import argparse
import dataclasses
from pathlib import Path

import spacy
import srsly
from spacy.tokens import Span

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import fixed_subset, strict_scores, unannotated

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
    results = {}  # pipeline -> answer threshold -> threshold -> scores
    pairs = [(a, t) for a in args.answer_thresholds for t in THRESHOLDS]
    for path in args.pipelines:
        nlp = spacy.load(path)
        pipe = nlp.get_pipe("cllmfs_ner")
        gold = read_docs(args.dev, nlp.vocab)
        gold = [gold[i] for i in fixed_subset(gold, args.limit)]
        labels = list(pipe.labels)
        results[str(path)] = {}
        for a in args.answer_thresholds:
            # every entity kept (threshold 0): the entity thresholds are applied below, the
            # pipeline's own included, so a pipeline saved with threshold 0.1 is swept below it
            pipe.decoding = dataclasses.replace(pipe.decoding, answer_threshold=a, threshold=0.0)
            predicted = list(nlp.pipe(unannotated(gold, nlp.vocab), batch_size=32))
            results[str(path)][str(a)] = {
                str(t): strict_scores(gold, kept(predicted, t), labels) for t in THRESHOLDS}
            at = results[str(path)][str(a)]
            print(f"{path}: answer threshold {a}: F1 {100 * at['0.0']['f1']:.1f} "
                  f"(P {100 * at['0.0']['precision']:.1f}, R {100 * at['0.0']['recall']:.1f}) "
                  f"at threshold 0", flush=True)
    mean = {f"{a}/{t}": sum(r[str(a)][str(t)]["f1"] for r in results.values()) / len(results)
            for a, t in pairs}
    best = max(mean, key=mean.get)
    summary = {"dev": str(args.dev), "limit": args.limit,
               "mean_f1 (answer_threshold/threshold)": mean, "best": best,
               "pipelines": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, summary)
    greedy = mean.get("0.5/0.0")
    print(f"best mean F1 {100 * mean[best]:.1f} at answer_threshold/threshold {best}"
          + (f" (greedy, no threshold: {100 * greedy:.1f})" if greedy is not None else "")
          + f"; wrote {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("dev", type=Path)
    parser.add_argument("pipelines", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--answer-thresholds", type=float, nargs="+", default=[0.5])
    main(parser.parse_args())
