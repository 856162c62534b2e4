"""Rehearsal from the user's own text: sentences of the corpus they will process, labelled by the
starting adapter zero-shot, trained on beside the shots.

Why (docs/experiments.md, issue 35): the K-shot sampler takes only sentences that hold the
types, so the shots teach each type's prior (how often to answer) as well as its boundaries,
and a few-shot run ended up answering "none" more, or less, than the user's text needs. The
starting adapter's own answers on that text, mixed into training, hold its prior on the text
that matters while the shots teach the rest.

Its labels are only as good as the starting adapter's grasp of the user's convention. Where the
adapter finds few of the shots' own entities (a convention it does not know, such as GUM's
unnamed mentions), its labels would teach its convention instead of the user's. So the command
first checks (spacy_cllmfs.convention: it decodes the training sentences zero-shot) and labels
nothing when the adapter finds less than convention.MIN_RECALL of their entities.

`python -m spacy_cllmfs.own_text TEXTS LABELS.json OUT.spacy [--n 32] [--seed 0]
[--exclude TRAIN.spacy] [--min-recall 0.2] [--config CONFIG] [--gpu-id 0]` writes the DocBin
that the recipe takes as paths.rehearsal, or exits with status REFUSED (3) and says why.
TEXTS: a .txt file (one text per line), a .jsonl file ({"text": ...} per line) or a .spacy
DocBin (its texts; its entities are not read). --exclude: the training DocBin, whose sentences
are not drawn and whose entities the check reads; without it there is nothing to check on, and
the texts are labelled whatever the adapter's grasp of the types.
"""
import argparse
import random
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .convention import REFUSED, add_check_arguments, check
from .corpus import read_docs
from .prompts import label_dict
from .rows import TYPES_KEY


def read_texts(path) -> List[str]:
    """The texts of a .txt (one per line), .jsonl ({"text": ...}) or .spacy file, in order;
    blank ones left out."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file of texts at {path}.")
    if path.suffix == ".spacy":
        texts = [doc.text for doc in read_docs(path, spacy.blank("en").vocab)]
    elif path.suffix == ".jsonl":
        texts = []
        for number, row in enumerate(srsly.read_jsonl(path), 1):
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}, line {number}: expected {{\"text\": ...}}, got "
                                 f"{str(row)[:60]!r}.")
            texts.append(row["text"])
    elif path.suffix == ".txt":
        texts = path.read_text(encoding="utf8").splitlines()
    else:
        raise ValueError(f"{path}: give a .txt (one text per line), .jsonl or .spacy file.")
    return [t for t in texts if t.strip()]


def draw(texts: Sequence[str], n: int, seed: int, exclude: Sequence[str] = ()) -> List[str]:
    """`n` of the texts that are not in `exclude` (the shots), drawn with random.Random(seed)
    over their positions and kept in their order, a text drawn twice kept once; all of them
    when there are no more than `n`."""
    if n < 1:
        raise ValueError(f"The number of own-text sentences must be at least 1, got {n}.")
    taken = set(exclude)
    pool = [t for t in texts if t not in taken]
    if not pool:
        raise ValueError("No text to label: every text is empty or among the training "
                         "sentences.")
    if len(pool) > n:
        pool = [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), n))]
    return list(dict.fromkeys(pool))


def labelled(nlp: Language, texts: Sequence[str], labels: Dict[str, str],
             batch_size: int = 16) -> List[Doc]:
    """The texts as docs with `nlp`'s entities of `labels`, each carrying those types
    (user_data[rows.TYPES_KEY], as rehearsal sentences do), so that training asks it about
    them whatever the component's labels."""
    types = {label: {"description": description or label}
             for label, description in labels.items()}
    docs = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        doc.ents = [e for e in doc.ents if e.label_ in labels]
        doc.user_data[TYPES_KEY] = types
        docs.append(doc)
    return docs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("texts", help=".txt (one per line), .jsonl or .spacy")
    parser.add_argument("labels", help="the labels file the recipe trains on")
    parser.add_argument("output", type=Path)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", default=None,
                        help="the training DocBin: its sentences are not drawn again, and "
                             "the --min-recall check runs on its entities (without it: no check)")
    add_check_arguments(parser, "label nothing (exit status 3)", "labels the texts")
    args = parser.parse_args(argv)
    labels = label_dict(srsly.read_json(args.labels))
    shots = read_docs(args.exclude, spacy.blank("en").vocab) if args.exclude else []
    texts = draw(read_texts(args.texts), args.n, args.seed, [d.text for d in shots])
    nlp, use, recall = check(shots, labels, args.min_recall, args.config, args.gpu_id)
    if not use:
        print(f"Not labelling {args.texts}: zero-shot, the starting adapter finds {recall:.0%} "
              f"of the entities of {args.exclude} (below --min-recall {args.min_recall:g}). "
              "Its labels would teach its own convention instead of your sentences' (on GUM "
              "dev this cost 8 F1). Train on your sentences alone (no --paths.rehearsal: the "
              "source corpora teach that convention too), or pass --min-recall 0 to use them "
              "anyway.", file=sys.stderr)
        sys.exit(REFUSED)
    docs = labelled(nlp, texts, labels)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(args.output)
    answered = sum(1 for d in docs if d.ents)
    print(f"{args.output}: {len(docs)} of your texts, {answered} with an entity, "
          f"{sum(len(d.ents) for d in docs)} entities (the starting adapter's, zero-shot"
          + (f"; it finds {recall:.0%} of the training sentences' entities)" if recall is not None
             else ")"))


if __name__ == "__main__":
    main()
