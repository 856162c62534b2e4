"""Score a general adapter zero-shot: no training on the target, labels with descriptions.

Tasks (each a strict seqeval F1 and the documents per second of nlp.pipe):
  source  each source corpus's held-out sentences, with that corpus's types
          (configs/source_types.json): --split dev takes one half of them, --split test the
          other half (a fixed permutation, random.Random(0)), so that dev and test never share
          a sentence
  wnut17  WNUT-17 (its dev or test split; a fixed subset as in the compare workflow), with each
          compare seed's 3 types and with all 6 (configs/wnut17_types.json)
  news    the bundled news sample's dev or test split, PERSON / ORG / LOC
          (configs/news_types.json)
  gum     GUM's dev or test split (a fixed subset, --limit), all ten types with their
          descriptions (configs/gum_types.json): every mention, named or not, a convention no
          source corpus has

Usage: python scripts/evaluate_general.py START OUTPUT.json [--template ner.v1] [--resume]
         [--tasks source wnut17 news gum] [--split dev] [--limit 500] [--source-limit 300]
START is what the component starts from (model.start): "default", "blank" or an adapter folder;
or a saved pipeline (a folder with config.cfg, e.g. training/source/model-last), whose adapter,
template and base model are used.
"""
import argparse
import random
import time
from pathlib import Path

import spacy
import srsly
import torch

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.fewshot import sample_episode
from spacy_cllmfs.scoring import fixed_subset, strict_scores, unannotated

HERE = Path(__file__).resolve().parent.parent


def subset(docs, limit):
    return [docs[i] for i in fixed_subset(docs, limit)]


def heldout_half(docs, split: str):
    """The dev or the test half of a source corpus's held-out sentences, in corpus order: the
    two halves of a fixed permutation (random.Random(0)), disjoint."""
    order = random.Random(0).sample(range(len(docs)), len(docs))
    half = order[: len(docs) // 2] if split == "dev" else order[len(docs) // 2:]
    return [docs[i] for i in sorted(half)]


def component_config(start: str, template: str) -> dict:
    """The component's settings for START: an adapter (or "default"/"blank") with the given
    template on the default base model, or a saved pipeline's adapter, template and base."""
    saved = Path(start) / "config.cfg"
    if not saved.is_file():
        return {"template": template, "model": {"start": start}}
    config = spacy.util.load_config(saved)["components"]["cllmfs_ner"]
    return {"template": config["template"],
            "model": {"base_model": dict(config["model"]["base_model"]),
                      "start": str(Path(start) / "cllmfs_ner" / "adapter")}}


def run(start: str, template: str, labels: dict, gold, batch_size: int = 32) -> dict:
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config={"labels": labels, **component_config(start, template)})
    nlp.initialize()
    bare = unannotated(gold, nlp.vocab)
    started = time.time()
    predicted = list(nlp.pipe(bare, batch_size=batch_size))
    seconds = time.time() - started
    scores = strict_scores(gold, predicted, list(labels))
    return {**scores, "docs": len(gold), "seconds": round(seconds, 1),
            "docs_per_second": round(len(gold) / seconds, 2), "labels": labels}


def main(args) -> dict:
    vocab = spacy.blank("en").vocab
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = {"start": args.start, "split": args.split,
               "template": component_config(args.start, args.template)["template"]}
    if args.resume and args.output.exists():
        # Adds to (or finishes) a run of the same adapter, split and template; without
        # --resume everything asked for is scored anew, so a file never keeps stale figures.
        earlier = srsly.read_json(args.output)
        if all(earlier.get(key) == value for key, value in results.items()):
            results = {**earlier, **results}

    def record(key, compute):
        if key in results:
            return
        results[key] = compute()
        print(key, f"F1 {100 * results[key]['f1']:.1f}",
              f"{results[key]['docs_per_second']} docs/s", flush=True)
        srsly.write_json(args.output, results)

    if "source" in args.tasks:
        described = srsly.read_json(HERE / "configs" / "source_types.json")
        for folder in sorted(args.source.iterdir()):
            if not (folder / "heldout.spacy").exists():
                continue
            labels = {t: described[folder.name][t]["description"]
                      for t in srsly.read_json(folder / "types.json")}
            heldout = read_docs(folder / "heldout.spacy", vocab)
            gold = subset(heldout_half(heldout, args.split), args.source_limit)
            record(f"source/{folder.name}", lambda: run(args.start, args.template, labels, gold))
    if "wnut17" in args.tasks:
        described = srsly.read_json(HERE / "configs" / "wnut17_types.json")
        described.pop("_about")
        train = read_docs(args.wnut / "train.spacy", vocab)
        gold = subset(read_docs(args.wnut / f"{args.split}.spacy", vocab), args.limit)
        for seed in args.seeds:
            types = sample_episode(train, 3, 5, seed).types
            labels = {t: described[t] for t in types}
            record(f"wnut17/seed{seed}", lambda: run(args.start, args.template, labels, gold))
        record("wnut17/all6", lambda: run(args.start, args.template, described, gold))
    if "news" in args.tasks:
        labels = srsly.read_json(HERE / "configs" / "news_types.json")
        labels.pop("_about")
        gold = read_docs(args.news / f"{args.split}.spacy", vocab)
        record("news", lambda: run(args.start, args.template, labels, gold))
    if "gum" in args.tasks:
        labels = srsly.read_json(HERE / "configs" / "gum_types.json")
        labels.pop("_about")
        gold = subset(read_docs(args.gum / f"{args.split}.spacy", vocab), args.limit)
        record("gum", lambda: run(args.start, args.template, labels, gold))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("start")
    parser.add_argument("output", type=Path)
    parser.add_argument("--template", default="ner.v1")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results of a run of the same adapter, split and template "
                             "already in OUTPUT (an interrupted run, or another command's "
                             "tasks); without it every task is scored anew")
    parser.add_argument("--tasks", nargs="+", default=["source", "wnut17", "news"])
    parser.add_argument("--split", default="dev", choices=["dev", "test"])
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--source-limit", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--source", type=Path, default=Path("corpus/source"))
    parser.add_argument("--wnut", type=Path, default=Path("corpus/wnut17"))
    parser.add_argument("--news", type=Path, default=Path("corpus/news"))
    parser.add_argument("--gum", type=Path, default=Path("corpus/gum"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    main(args)
