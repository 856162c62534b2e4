"""Train the few-shot recipe on your own sentences (the project's `train` command).

Checks the inputs first (the DocBin, the labels file, their labels against each other), then
runs `python -m spacy train CONFIG` with them; the recipe's config sets the length from the
number of sentences and mixes in the rehearsal sentences when REHEARSAL exists. Without
--dev, the training sentences stand in for the dev set (one evaluation, at the end).

Rehearsal: the recipe mixes 32 sentences into yours, so that the shots teach the types'
boundaries without undoing what the starting adapter knows. Which ones, and whether, depends on
the adapter's grasp of your convention (spacy_cllmfs.convention): the share of your training
sentences' entities it finds zero-shot. At least --own-text-min-recall (default
spacy_cllmfs.convention.MIN_RECALL, 0.2; 0: no check): with --own-text TEXTS (.txt, one text per
line; .jsonl; or .spacy: the text you will process), 32 of its texts that are not training
sentences, labelled by the starting adapter (spacy_cllmfs.own_text, written to
OUTPUT_DIR/own_text.spacy), so that the shots do not move how often the adapter answers on your
text; without it, REHEARSAL (the source corpora's sentences) where it exists. Below it, both
would teach the adapter's convention instead of yours (on GUM dev, the source sentences cost 1.8
F1 at K = 5 against your sentences alone, and own text 8.0 more: docs/experiments.md): the
recipe trains on your sentences alone (--if-rejected shots, the default) or with REHEARSAL
(--if-rejected source). The command says which. An override of --corpora.train.rehearsal (0:
none) is used as given, unchecked.

Per-type fallback (spacy_cllmfs.fallback; with your text, where it was used): after training,
96 more of its texts, none trained on, are decoded by the trained model and by the starting
adapter; a type the trained model answers in fewer than half as many of them as the adapter
(which answered it in at least 5) goes back to the adapter, a second component of model-last.
Off by default (on WNUT-17 dev it did not add on the mean); --fallback on turns it on.

Usage: python scripts/train_custom.py CONFIG TRAIN.spacy LABELS.json OUTPUT_DIR
       [--dev DEV.spacy] [--rehearsal corpus/source/train.spacy] [--own-text TEXTS]
       [--own-text-min-recall 0.2] [--if-rejected shots|source] [--fallback on|off]
       [--gpu-id -1] [overrides]
Writes OUTPUT_DIR/model-last (and model-best), a pipeline `spacy.load` opens.
"""
import argparse
import subprocess
import sys
from pathlib import Path
from typing import Optional

import spacy
import srsly

from spacy_cllmfs import configs, convention, fallback as type_fallback
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


def passes(module: str, *args: str, config, min_recall: float, gpu_id: int) -> bool:
    """Runs `python -m MODULE ARGS` with the check's options (spacy_cllmfs.convention): False
    when it exits with convention.REFUSED, True when it succeeds; any other failure raises."""
    done = subprocess.run([sys.executable, "-m", module, *args, "--config", str(config),
                           "--min-recall", str(min_recall), "--gpu-id", str(gpu_id)])
    if done.returncode == convention.REFUSED:
        return False
    done.check_returncode()
    return True


def label_own_text(config, texts: str, train: str, labels: str, output: Path,
                   gpu_id: int, min_recall: float) -> Optional[Path]:
    """OUTPUT/own_text.spacy: OWN_TEXT sentences of `texts` labelled by the config's starting
    adapter (python -m spacy_cllmfs.own_text); None when it does not find enough of the
    training sentences' entities for its labels to be used."""
    path = output / "own_text.spacy"
    return path if passes("spacy_cllmfs.own_text", texts, labels, str(path), "--n",
                          str(OWN_TEXT), "--exclude", train, config=config,
                          min_recall=min_recall, gpu_id=gpu_id) else None


def knows_convention(config, train: str, labels: str, gpu_id: int, min_recall: float) -> bool:
    """Whether the config's starting adapter finds at least `min_recall` of the training
    sentences' entities zero-shot (python -m spacy_cllmfs.convention, which says so)."""
    return passes("spacy_cllmfs.convention", train, labels, config=config,
                  min_recall=min_recall, gpu_id=gpu_id)


def per_type_fallback(output: Path, texts: str, train: str, labelled: Path,
                      gpu_id: int) -> None:
    """Hand the types the trained model stopped answering on `texts` back to the starting
    adapter (python -m spacy_cllmfs.fallback, which rewrites model-last where one goes back
    and says which); the sentences training saw are not drawn."""
    subprocess.run([sys.executable, "-m", "spacy_cllmfs.fallback", str(output / "model-last"),
                    texts, "--exclude", train, str(labelled), "--gpu-id", str(gpu_id)],
                   check=True)


def main(config, train, labels, output, dev, rehearsal, gpu_id, overrides,
         own_text: str = "", min_recall: Optional[float] = None,
         if_rejected: str = convention.IF_REJECTED[0],
         fallback: bool = type_fallback.SWITCH[0] == "on") -> None:
    check(train, labels, dev)
    if if_rejected not in convention.IF_REJECTED:
        raise SystemExit(f"--if-rejected {if_rejected!r}: give one of "
                         f"{', '.join(convention.IF_REJECTED)}.")
    if own_text and not Path(own_text).is_file():
        raise SystemExit(f"No file at {own_text} (--own-text: the text you will process).")
    config = configs.resolve(config)
    if min_recall is None:
        min_recall = convention.MIN_RECALL
    source = "--if-rejected source, in the project --vars.own_text_rejected source"
    anyway = "--own-text-min-recall 0, in the project --vars.own_text_min_recall 0"
    labelled = None
    if own_text:
        labelled = label_own_text(config, own_text, train, labels, output, gpu_id, min_recall)
        rejected = labelled is None
        if labelled:
            rehearsal = labelled
            # all of them, also when the text held fewer than OWN_TEXT
            count = len(read_docs(rehearsal, spacy.blank("en").vocab))
            overrides = ["--corpora.train.rehearsal", str(count), *overrides]
    elif Path(rehearsal).is_file() and not any(
            o.startswith("--corpora.train.rehearsal") for o in overrides):
        rejected = min_recall > 0 and not knows_convention(config, train, labels, gpu_id,
                                                           min_recall)
        if not rejected:
            print(f"Training with the source rehearsal ({rehearsal}). To rehearse the text you "
                  "will process instead, labelled by the starting adapter: --own-text TEXTS "
                  "(in the project --vars.own_text).")
    else:  # no rehearsal, or the user's own count of it
        rejected = False
    if rejected and if_rejected == "shots":
        overrides = ["--corpora.train.rehearsal", "0", *overrides]
        print("Training on your sentences alone, without "
              f"{'your text or ' if own_text else ''}the source rehearsal, which would teach "
              "the starting adapter's convention instead of yours ("
              + (f"with the source rehearsal: {source}; with your text anyway: {anyway})."
                 if own_text else f"to rehearse it anyway: {source})."))
    elif rejected and own_text:
        print(f"Training with the source rehearsal ({rehearsal}) instead of your text (to use "
              f"it anyway: {anyway}).")
    elif rejected:
        print(f"Training with the source rehearsal ({rehearsal}), as --if-rejected source asks.")
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output),
               "--paths.train", train, "--paths.dev", dev or train, "--paths.labels", labels,
               "--paths.rehearsal", str(rehearsal), "--paths.log", str(output / "log.jsonl"),
               "--gpu-id", str(gpu_id), *overrides]
    subprocess.run(command, check=True)
    if labelled and fallback:
        per_type_fallback(output, own_text, train, labelled, gpu_id)
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
                        help="rehearse (your text, or else the source sentences) only when the "
                             "starting adapter finds this share of your training sentences' "
                             f"entities (default: {convention.MIN_RECALL}; 0: always)")
    parser.add_argument("--if-rejected", default=convention.IF_REJECTED[0],
                        choices=convention.IF_REJECTED,
                        help="what trains with your sentences when the adapter finds less: "
                             "nothing (shots) or the source rehearsal (source)")
    parser.add_argument("--fallback", default=type_fallback.SWITCH[0],
                        choices=type_fallback.SWITCH,
                        help="hand the types training stopped answering on your text back to "
                             "the starting adapter (with --own-text, where it was used)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args, overrides = parser.parse_known_args()
    min_recall = float(args.own_text_min_recall) if args.own_text_min_recall else None
    main(args.config, args.train, args.labels, args.output, args.dev, args.rehearsal,
         args.gpu_id, [o for o in overrides if o != "--"], args.own_text, min_recall,
         args.if_rejected, args.fallback == "on")
