"""Train the few-shot recipe on your own sentences (the project's `train` command).

Checks the inputs first (the DocBin, the labels file, their labels against each other), then
runs `python -m spacy train CONFIG` with them; the recipe's config sets the length from the
number of sentences and mixes in the rehearsal sentences when REHEARSAL exists. Without
--dev, the training sentences stand in for the dev set (one evaluation, at the end).

--own-text TEXTS (.txt, one text per line; .jsonl; or .spacy): the text you will process. 32
of its texts that are not training sentences are labelled by the starting adapter zero-shot
(spacy_cllmfs.own_text, written to OUTPUT_DIR/own_text.spacy) and take the place of the source
rehearsal: the shots then teach the types' boundaries without moving how often the adapter
answers on your text (docs/experiments.md, issue 35). Unless the starting adapter finds at
least --own-text-min-recall of your training sentences' entities zero-shot (default
spacy_cllmfs.own_text.MIN_RECALL): then its labels would teach its convention instead of
yours. Then (--if-rejected) the recipe trains on your sentences alone ("shots", the default:
the source sentences would teach the adapter's convention too; on GUM dev they cost 1.8 F1 at
K = 5) or with the source rehearsal ("source"), and the command says which. Without
--own-text nothing is checked: the recipe trains with REHEARSAL where it exists, and says so.

Usage: python scripts/train_custom.py CONFIG TRAIN.spacy LABELS.json OUTPUT_DIR
       [--dev DEV.spacy] [--rehearsal corpus/source/train.spacy] [--own-text TEXTS]
       [--own-text-min-recall 0.2] [--if-rejected shots|source] [--gpu-id -1] [overrides]
Writes OUTPUT_DIR/model-last (and model-best), a pipeline `spacy.load` opens.
"""
import argparse
import subprocess
import sys
from pathlib import Path
from typing import Optional

import spacy
import srsly

from spacy_cllmfs import configs, own_text as own
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.prompts import label_dict

OWN_TEXT = 32  # as many as the source rehearsal's, as measured on WNUT-17 dev


def check(train: str, labels: str, dev: str):
    if not train or not labels:
        raise SystemExit(
            "Give your data: spacy project run train . --vars.train_data PATH.spacy "
            "--vars.labels LABELS.json [--vars.dev_data PATH.spacy] (convert CoNLL/IOB with "
            "`python -m spacy convert FILE OUT_DIR -c ner`).")
    for path in (train, labels, dev):
        if path and not Path(path).is_file():
            raise SystemExit(f"No file at {path}.")
    try:
        names = label_dict(srsly.read_json(labels))
    except ValueError as err:
        raise SystemExit(f"{labels}: {err}")
    docs = read_docs(train, spacy.blank("en").vocab)
    if not docs:
        raise SystemExit(f"{train} holds no sentences.")
    print(f"{len(docs)} training sentences, {sum(len(d.ents) for d in docs)} entities; "
          f"labels: {', '.join(names)}")


def label_own_text(config, texts: str, train: str, labels: str, output: Path,
                   gpu_id: int, min_recall: float) -> Optional[Path]:
    """OUTPUT/own_text.spacy: OWN_TEXT sentences of `texts` labelled by the config's starting
    adapter (python -m spacy_cllmfs.own_text); None when it does not find enough of the
    training sentences' entities for its labels to be used."""
    path = output / "own_text.spacy"
    done = subprocess.run([sys.executable, "-m", "spacy_cllmfs.own_text", texts, labels,
                           str(path), "--n", str(OWN_TEXT), "--exclude", train, "--config",
                           str(config), "--min-recall", str(min_recall), "--gpu-id",
                           str(gpu_id)])
    if done.returncode == own.REFUSED:
        return None
    done.check_returncode()
    return path


def main(config, train, labels, output, dev, rehearsal, gpu_id, overrides,
         own_text: str = "", min_recall: Optional[float] = None,
         if_rejected: str = own.IF_REJECTED[0]) -> None:
    check(train, labels, dev)
    if if_rejected not in own.IF_REJECTED:
        raise SystemExit(f"--if-rejected {if_rejected!r}: give one of "
                         f"{', '.join(own.IF_REJECTED)}.")
    if own_text and not Path(own_text).is_file():
        raise SystemExit(f"No file at {own_text} (--own-text: the text you will process).")
    config = configs.resolve(config)
    if min_recall is None:
        min_recall = own.MIN_RECALL
    labelled = label_own_text(config, own_text, train, labels, output, gpu_id, min_recall) \
        if own_text else None
    if labelled:
        rehearsal = labelled
        # all of them, also when the text held fewer than OWN_TEXT
        count = len(read_docs(rehearsal, spacy.blank("en").vocab))
        overrides = ["--corpora.train.rehearsal", str(count), *overrides]
    elif own_text and if_rejected == "shots":
        overrides = ["--corpora.train.rehearsal", "0", *overrides]
        print("Training on your sentences alone, without your text or the source rehearsal, "
              "which would teach the starting adapter's convention (for the source rehearsal: "
              "--if-rejected source, in the project --vars.own_text_rejected source; to use "
              "your text anyway: --own-text-min-recall 0, in the project "
              "--vars.own_text_min_recall 0).")
    elif own_text:
        print(f"Training with the source rehearsal ({rehearsal}) instead of your text (to use "
              "it anyway: --own-text-min-recall 0, in the project --vars.own_text_min_recall 0).")
    elif Path(rehearsal).is_file() and not any(
            o.startswith("--corpora.train.rehearsal") for o in overrides):
        print(f"Training with the source rehearsal ({rehearsal}). Nothing checks that it keeps "
              "your convention: give --own-text (in the project --vars.own_text), some of the "
              "text you will process, and the recipe checks and chooses; or train on your "
              "sentences alone with --corpora.train.rehearsal 0 (in the project "
              "--vars.rehearsal none).")
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output),
               "--paths.train", train, "--paths.dev", dev or train, "--paths.labels", labels,
               "--paths.rehearsal", str(rehearsal), "--paths.log", str(output / "log.jsonl"),
               "--gpu-id", str(gpu_id), *overrides]
    subprocess.run(command, check=True)
    print(f"Trained: spacy.load({str(output / 'model-last')!r})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="a config file, or a shipped config's name")
    parser.add_argument("train")
    parser.add_argument("labels")
    parser.add_argument("output", type=Path)
    parser.add_argument("--dev", default="")
    parser.add_argument("--rehearsal", type=Path, default=Path("corpus/source/train.spacy"))
    parser.add_argument("--own-text", default="",
                        help="the text you will process (.txt, .jsonl or .spacy)")
    parser.add_argument("--own-text-min-recall", default="",
                        help="use your text only when the starting adapter finds this share of "
                             "your training sentences' entities (default: "
                             f"{own.MIN_RECALL}; 0: always)")
    parser.add_argument("--if-rejected", default=own.IF_REJECTED[0], choices=own.IF_REJECTED,
                        help="what trains with your sentences when your text is not used: "
                             "nothing (shots) or the source rehearsal (source)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args, overrides = parser.parse_known_args()
    min_recall = float(args.own_text_min_recall) if args.own_text_min_recall else None
    main(args.config, args.train, args.labels, args.output, args.dev, args.rehearsal,
         args.gpu_id, [o for o in overrides if o != "--"], args.own_text, min_recall,
         args.if_rejected)
