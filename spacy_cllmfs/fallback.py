"""An optional per-type fallback to the starting adapter: a type that training taught the model
to stop answering on the user's text is answered by the starting adapter again. Off by default
(the project's `--vars.fallback on`): over 22 WNUT-17 dev runs it added +0.15 F1 at K = 5 and
-0.18 at K = 10 on the mean, since a fall in answers can also be the trained model answering a
type more precisely than the adapter (docs/experiments.md).

Why (docs/experiments.md, issue 35): on some few-shot sets training costs a type the adapter
knew. On WNUT-17 dev (seed 4: corporation, creative-work, group) the trained model stopped
answering group, which the adapter answered zero-shot, and scored below the adapter alone.
Nothing in the shots shows it (the model fits them); the user's own text does.

After training, N texts of the user's own text that training did not see are decoded by the
trained pipeline and by the starting adapter zero-shot (greedily, as convention.py's check). A type
goes back to the adapter where the adapter answered it in at least MIN_ANSWERS of them and the
trained model in fewer than RATIO times as many (with fewer adapter answers the rates are too
noisy to compare: that guard was drawn on WNUT-17 dev seeds 1 to 5).
The pipeline then gets a second component, START_NAME: the starting adapter, decoding those
types greedily, after the trained component, which stops answering them
(CLLMFSNer.leave_labels). Entities of the two never overlap: the second keeps the first's.

Only for the own-text recipe: where the convention check rejects the adapter (GUM), its
entities follow another convention and are no fallback.

`python -m spacy_cllmfs.fallback MODEL TEXTS [--n 96] [--seed 0] [--exclude A.spacy ...]
[--ratio 0.5] [--min-answers 5] [--gpu-id 0]` decodes the texts (.txt, .jsonl or .spacy) and, where a type needs it, rewrites
MODEL (a trained pipeline's folder) with the fallback; it says which types went back.
"""
import argparse
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import spacy
from spacy.language import Language

from .convention import GREEDY
from .corpus import read_docs
from .own_text import draw, read_texts

RATIO = 0.5  # below this share of the adapter's answers, a type went back to the adapter
MIN_ANSWERS = 5  # the least adapter answers (texts with an entity of the type) to compare
N_TEXTS = 96  # the held-out texts decoded by both
SWITCH = ("off", "on")  # SWITCH[0] is the default of the project's train and compare
START_NAME = "cllmfs_ner_start"
COMPONENT = "cllmfs_ner"


def answers(nlp: Language, texts: Sequence[str], labels: Sequence[str],
            batch_size: int = 16) -> Dict[str, int]:
    """For each label, the number of texts in which `nlp` writes an entity of it."""
    counts = {label: 0 for label in labels}
    for doc in nlp.pipe(texts, batch_size=batch_size):
        for label in {e.label_ for e in doc.ents} & set(counts):
            counts[label] += 1
    return counts


def flag(start: Dict[str, int], trained: Dict[str, int], ratio: float = RATIO,
         min_answers: int = MIN_ANSWERS) -> List[str]:
    """The labels that go back to the starting adapter: answered in at least `min_answers`
    texts by it, and in fewer than `ratio` times as many by the trained model."""
    return [label for label, n in start.items()
            if n >= min_answers and trained.get(label, 0) < ratio * n]


def start_config(nlp: Language, labels: Sequence[str], name: str = COMPONENT) -> dict:
    """The config of a cllmfs_ner component that is the trained component `name`'s starting
    adapter (its model block: the same base model and start) on `labels`, decoding greedily
    in its windows: convention.GREEDY for the settings its decoding block sets (those it does
    not set have greedy defaults; Decoding.v1 has no others)."""
    block = nlp.config["components"][name]
    descriptions = nlp.get_pipe(name).label_descriptions
    decoding = dict(block["decoding"])
    decoding.update({key: value for key, value in GREEDY.items() if key in decoding})
    return {"labels": {label: descriptions[label] for label in labels},
            "model": block["model"], "template": block["template"], "decoding": decoding}


def attach(nlp: Language, labels: Sequence[str], name: str = COMPONENT) -> Language:
    """Hand `labels` of the trained component `name` back to its starting adapter: it stops
    answering them, and a second component (START_NAME, the same model block, so the same
    base model and starting adapter, decoding greedily) answers them after it. Every label
    handed back: the starting adapter takes the trained component's place and name. Returns
    `nlp`, changed in place."""
    trained = nlp.get_pipe(name)
    if START_NAME in nlp.pipe_names:
        raise ValueError(f"The pipeline already has a {START_NAME!r} component.")
    labels = list(dict.fromkeys(labels))
    descriptions = trained.label_descriptions
    missing = [label for label in labels if label not in descriptions]
    if missing:
        raise ValueError(f"{name} has no labels {missing}; its labels: {list(descriptions)}.")
    config = start_config(nlp, labels, name)
    if len(labels) == len(descriptions):
        nlp.replace_pipe(name, COMPONENT, config=config)
        nlp.get_pipe(name).initialize()
    else:
        nlp.add_pipe(COMPONENT, name=START_NAME, after=name, config=config)
        nlp.get_pipe(START_NAME).initialize()
        trained.leave_labels(labels)
    return nlp


def apply(nlp: Language, texts: Sequence[str], name: str = COMPONENT, ratio: float = RATIO,
          min_answers: int = MIN_ANSWERS) -> Tuple[List[str], Dict[str, int], Dict[str, int]]:
    """Decode `texts` with the trained pipeline and its starting adapter zero-shot, and
    attach() the fallback for the labels flag() finds. Returns those labels and both counts
    (starting adapter, trained)."""
    labels = list(nlp.get_pipe(name).labels)
    adapter = spacy.blank(nlp.lang)
    adapter.add_pipe(COMPONENT, config=start_config(nlp, labels, name))
    adapter.initialize()
    start, now = answers(adapter, texts, labels), answers(nlp, texts, labels)
    back = flag(start, now, ratio, min_answers)
    if back:
        attach(nlp, back, name)
    return back, start, now


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the trained pipeline's folder (rewritten)")
    parser.add_argument("texts", help="your text: .txt (one per line), .jsonl or .spacy")
    parser.add_argument("--n", type=int, default=N_TEXTS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", nargs="*", default=[],
                        help="DocBins whose sentences training saw (the training sentences, "
                             "the own-text rehearsal): not drawn")
    parser.add_argument("--ratio", type=float, default=RATIO,
                        help="a type goes back where the trained model answers it in fewer "
                             "than this share of the texts the adapter answers it in")
    parser.add_argument("--min-answers", type=int, default=MIN_ANSWERS,
                        help="... and the adapter answered it in at least this many")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args(argv)
    vocab = spacy.blank("en").vocab
    seen = [doc.text for path in args.exclude for doc in read_docs(path, vocab)]
    try:
        texts = draw(read_texts(args.texts), args.n, args.seed, seen)
    except ValueError as err:
        print(f"No per-type fallback check: {err}")
        return
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    nlp = spacy.load(args.model)
    back, start, now = apply(nlp, texts, ratio=args.ratio, min_answers=args.min_answers)
    counts = ", ".join(f"{label} {start[label]} -> {now[label]}" for label in start)
    print(f"Texts with an answer in {len(texts)} of your texts that training did not see "
          f"(starting adapter -> trained): {counts}.")
    if not back:
        print("Every type kept: the trained model answers them all.")
        return
    nlp.to_disk(args.model)
    print(f"Handed back to the starting adapter (fewer than {args.ratio:g} of its answers): "
          f"{', '.join(back)}. {args.model} now answers them with it ({START_NAME}).")


if __name__ == "__main__":
    main()
