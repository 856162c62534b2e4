"""Strict seqeval scores of the pipelines of every seed on a domain's test set: micro and
per-type precision/recall/F1, mean and standard deviation over seeds.

Usage: python scripts/evaluate.py CORPUS_DIR MODELS_DIR METRICS_DIR --domains news
       --seeds 1 2 [--stage model-best] --name trained [--gpu-id 0]
Reads MODELS_DIR/<domain>/seed<S>[/<stage>], writes METRICS_DIR/<name>/<domain>.json and
rewrites METRICS_DIR/results.md (one row <domain>_<name> per metrics JSON under METRICS_DIR).
Each pipeline is scored on the types it was trained for (the seed's N types): gold entities
of other types are left out, as Few-NERD does.
"""
import argparse
from pathlib import Path

import spacy
import srsly

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.scoring import aggregate, markdown_table, score_pipeline


def score(model_dir: Path, gold):
    """A saved pipeline's strict scores on the types it was trained for."""
    nlp = spacy.load(model_dir)
    return score_pipeline(nlp, gold, nlp.get_pipe("cllmfs_ner").labels, nlp.batch_size)


def main(corpus, models, metrics, domains, seeds, stage, name) -> None:
    (metrics / name).mkdir(parents=True, exist_ok=True)
    for domain in domains:
        gold = read_docs(corpus / domain / "test.spacy", spacy.blank("en").vocab)
        runs = [
            score(models / domain / f"seed{seed}" / stage, gold)
            for seed in seeds
        ]
        result = {**aggregate(runs), "seeds": list(seeds), "runs": runs,
                  "test_docs": len(gold), "stage": stage}
        srsly.write_json(metrics / name / f"{domain}.json", result)
        print(f"{domain} {name}: F1 {100 * result['f1']:.1f} ± {100 * result['f1_std']:.1f}")
    rows = {}
    for path in sorted(metrics.glob("*/*.json")):
        data = srsly.read_json(path)
        if isinstance(data, dict) and "f1_std" in data:
            rows[f"{path.stem}_{path.parent.name}"] = data
    table = markdown_table(rows)
    (metrics / "results.md").write_text(table, encoding="utf8")
    print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("--domains", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--stage", default="", help="e.g. model-best")
    parser.add_argument("--name", required=True)
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    main(args.corpus, args.models, args.metrics, args.domains, args.seeds, args.stage,
         args.name)
