"""Did training help? Strict F1 (seqeval) of your trained pipeline on your held-out sentences,
beside the shipped general adapter's zero-shot F1 on the same sentences, labels and
descriptions (the project's `evaluate` command).

Usage: python scripts/evaluate_custom.py MODEL_DIR DEV.spacy OUTPUT_JSON [--gpu-id -1]
"""
import argparse
import json
from pathlib import Path

import spacy

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import score_pipeline


def score(nlp, gold, labels):
    return {k: round(100 * v, 1) for k, v in score_pipeline(nlp, gold, labels, 64).items()
            if k in ("precision", "recall", "f1")}


def zero_shot(trained):
    """The same labels and descriptions on the shipped general adapter, with the component's
    default decoding (the trained recipe's thresholds are for trained adapters)."""
    pipe = trained.get_pipe("cllmfs_ner")
    base = trained.config["components"]["cllmfs_ner"]["model"]["base_model"]
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config={"labels": pipe.label_descriptions,
                                        "template": pipe.template.name,
                                        "model": {"base_model": dict(base), "start": "default"}})
    nlp.initialize()
    return nlp


def main(model: Path, dev: str, output: Path, gpu_id: int) -> None:
    if not dev:
        print("No held-out data (--vars.dev_data PATH.spacy): nothing to evaluate.")
        return
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    trained = spacy.load(model)
    labels = trained.get_pipe("cllmfs_ner").labels
    gold = read_docs(dev, trained.vocab)
    result = {"dev": dev, "sentences": len(gold), "labels": list(labels),
              "trained": score(trained, gold, labels),
              "zero_shot": score(zero_shot(trained), gold, labels)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"strict F1 on {len(gold)} sentences: trained {result['trained']['f1']}, "
          f"shipped adapter zero-shot {result['zero_shot']['f1']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("dev")
    parser.add_argument("output", type=Path)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()
    main(args.model, args.dev, args.output, args.gpu_id)
