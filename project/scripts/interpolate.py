"""Interpolate trained cllmfs_ner pipelines with the adapter they started from (WiSE-FT for
LoRA, spacy_cllmfs.adapter.interpolate) and score each weight on a corpus. To keep an
interpolated pipeline: `nlp.get_pipe("cllmfs_ner").language_model.interpolate(start, w)`, then
`nlp.to_disk(...)`.

Usage: python scripts/interpolate.py OUTPUT.json CORPUS.spacy PIPELINE [PIPELINE ...]
           --weights 0.25 0.5 0.75 [--limit 150] [--decoding JSON]
Each pipeline is scored on its own labels (the seed's types), on the same fixed subset of the
corpus as compare.py's (`--limit` sentences drawn with random.Random(0)); weight 1.0 is the
trained adapter itself. The start is the component's `model.start` (the shipped general
adapter for the few-shot recipe). `--decoding '{"answer_threshold": 0.5, "threshold": 0.0}'`
overrides the pipelines' decoding settings (that one is greedy decoding, as compare.py gives
the untrained systems).
"""
import argparse
import json
import time
from pathlib import Path

import spacy
import srsly

from compare import test_subset
from spacy_cllmfs import shipped
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import strict_scores, unannotated


def start_of(nlp) -> Path:
    pipe = nlp.get_pipe("cllmfs_ner")
    lm = pipe.language_model
    folder = shipped.start_folder(lm.start, lm.identity, pipe.template.name)
    if folder is None:
        raise SystemExit(f"{lm.start!r}: this pipeline started from a blank adapter; there is "
                         "nothing to interpolate with.")
    return folder


def main(output, corpus, pipelines, weights, limit, decoding) -> None:
    gold = read_docs(corpus, spacy.blank("en").vocab)
    gold = [gold[i] for i in test_subset(gold, limit)]
    results = []
    for path in pipelines:
        for weight in weights:
            started = time.time()
            nlp = spacy.load(path, config={"components": {"cllmfs_ner": {"decoding": decoding}}})
            pipe = nlp.get_pipe("cllmfs_ner")
            if weight < 1.0:
                pipe.language_model.interpolate(start_of(nlp), weight)
            predicted = list(nlp.pipe(unannotated(gold, nlp.vocab), batch_size=32))
            scores = strict_scores(gold, predicted, pipe.labels)
            results.append({"pipeline": str(path), "weight": weight, "decoding": decoding,
                            "docs": len(gold),
                            "seconds": round(time.time() - started, 1), **scores})
            print(f"{path} weight {weight} {decoding}: F1 {100 * scores['f1']:.1f} "
                  f"(P {100 * scores['precision']:.1f}, R {100 * scores['recall']:.1f})",
                  flush=True)
            srsly.write_json(output, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("pipelines", type=Path, nargs="+")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5])
    parser.add_argument("--limit", type=int, default=0, help="0: the whole corpus")
    parser.add_argument("--decoding", type=json.loads, default={},
                        help="JSON: decoding settings to override")
    args = parser.parse_args()
    main(args.output, args.corpus, args.pipelines, args.weights, args.limit, args.decoding)
