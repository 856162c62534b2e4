"""What training on the shots changes: the shipped adapter zero-shot against the trained
pipelines of a compare run, entity by entity, on the same dev sentences.

For each seed's trained pipeline (WORK_DIR/k<K>/seed<S>/<system>/model-last, as
scripts/compare.py leaves it) and the shipped adapter on the same labels (decoded greedily, as
compare's general_zero_shot), on the compare workflow's fixed subset of CORPUS_DIR/<split>.spacy:
- per type: gold entities, those each finds (true positives), those the zero-shot adapter found
  and the trained one lost, those the trained one gained, and each one's false positives;
- the answer rate: the share of (sentence, type) questions answered with at least one entity,
  against the gold share;
- the training objective (cross-entropy + InfoNCE, no update) of each on the shots it was
  trained on and on as many held-out training sentences of the same types (not among the
  shots): a trained loss far below its held-out loss is memorised, not learned.

Usage: python scripts/analyse_shots.py CORPUS_DIR WORK_DIR OUT.json --shots 5 --seeds 1 2 3
           [--system cllmfs] [--split dev] [--limit 150]
"""
import argparse
import random
from pathlib import Path

import spacy
import srsly
from spacy.training import Example

from spacy_cllmfs import convention
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import fixed_subset, unannotated


def found(docs, labels):
    """{(doc index, start char, end char, label)} of the docs' entities of `labels`."""
    return {(i, e.start_char, e.end_char, e.label_)
            for i, doc in enumerate(docs) for e in doc.ents if e.label_ in labels}


def answer_rate(docs, labels) -> float:
    asked = len(docs) * len(labels)
    answered = sum(1 for doc in docs for label in labels
                   if any(e.label_ == label for e in doc.ents))
    return answered / asked if asked else 0.0


def held_out(train, shots, labels, n: int, seed: int):
    """n training sentences with an entity of `labels`, none of them a shot."""
    taken = {d.text for d in shots}
    pool = [d for d in train if d.text not in taken and any(e.label_ in labels for e in d.ents)]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def objective(nlp, docs) -> float:
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    return round(nlp.get_pipe("cllmfs_ner").get_loss(examples)[0] / max(1, len(examples)), 4)


def analyse(gold, systems: dict, labels) -> dict:
    """Per type and in all: what each system finds and what training changed."""
    truth = found(gold, labels)
    predicted = {name: found(docs, labels) for name, docs in systems.items()}
    zs, tr = predicted["zero_shot"], predicted["trained"]
    report = {}
    for label in [*labels, None]:
        def of(items):
            return {x for x in items if label is None or x[3] == label}
        report[label or "all"] = {
            "gold": len(of(truth)),
            "zero_shot_tp": len(of(zs & truth)), "trained_tp": len(of(tr & truth)),
            "lost": len(of((zs & truth) - tr)), "gained": len(of((tr & truth) - zs)),
            "zero_shot_fp": len(of(zs - truth)), "trained_fp": len(of(tr - truth)),
        }
    rates = {name: round(answer_rate(docs, labels), 3) for name, docs in systems.items()}
    return {"types": report, "answer_rate": {**rates, "gold": round(answer_rate(gold, labels), 3)}}


def main(args) -> dict:
    vocab = spacy.blank("en").vocab
    gold_all = read_docs(args.corpus / f"{args.split}.spacy", vocab)
    gold = [gold_all[i] for i in fixed_subset(gold_all, args.limit)]
    train = read_docs(args.corpus / "train.spacy", vocab)
    result = {"split": args.split, "sentences": len(gold), "shots": args.shots, "seeds": {}}
    for seed in args.seeds:
        run = args.work / f"k{args.shots}" / f"seed{seed}"
        labels = srsly.read_json(run / "labels.json")
        shots = read_docs(run / "shots.spacy", vocab)
        trained = spacy.load(run / args.system / "model-last")
        untrained = convention.zero_shot_pipeline(labels)
        systems = {name: list(nlp.pipe(unannotated(gold, nlp.vocab)))
                   for name, nlp in (("zero_shot", untrained), ("trained", trained))}
        entry = analyse(gold, systems, list(labels))
        others = held_out(train, shots, set(labels), len(shots), seed)
        entry["objective_per_sentence"] = {
            name: {"shots": objective(nlp, shots), "held_out": objective(nlp, others)}
            for name, nlp in (("zero_shot", untrained), ("trained", trained))}
        result["seeds"][str(seed)] = entry
        t = entry["types"]["all"]
        print(f"seed {seed}: gold {t['gold']}, zero-shot {t['zero_shot_tp']} (fp "
              f"{t['zero_shot_fp']}), trained {t['trained_tp']} (fp {t['trained_fp']}), lost "
              f"{t['lost']}, gained {t['gained']}; answer rate {entry['answer_rate']}; "
              f"objective {entry['objective_per_sentence']}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--system", default="cllmfs")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=150)
    main(parser.parse_args())
