"""Does the starting adapter know the user's convention? The check that decides what the recipe
trains on beside the user's sentences (the shots).

The recipe mixes rehearsal sentences into the shots: the user's own text labelled by the
starting adapter (spacy_cllmfs.own_text), or the source corpora's sentences. Both carry the
adapter's convention (named entities only, in the source corpora's bounds). Where the user's
convention is another (GUM's unnamed mentions: "a house cat" is an animal, "the problem"
abstract), they teach against the shots: on GUM dev, own text cost 8.0 F1 against the source
sentences, and those cost 1.8 against the shots alone (K = 5); on WNUT-17 dev, whose convention
the adapter knows, own text added 4.8 to the source sentences, and those added 4.4 to the shots
alone (the recipe of 2026-11-26; docs/experiments.md).

The check: decode the shots zero-shot and take the share of their entities the adapter finds
(strict recall). At least MIN_RECALL: its convention is the user's, and rehearsal keeps what
it knows. Below: the recipe trains on the shots alone (IF_REJECTED[0], the default) or, if
asked, with the source rehearsal.

`python -m spacy_cllmfs.convention TRAIN.spacy LABELS.json [--min-recall 0.2] [--config CONFIG]
[--gpu-id 0]` says what the adapter finds of TRAIN's entities and exits with status 0 (it
knows the convention, or TRAIN holds no entity of LABELS to check on) or REFUSED (3).
"""
import argparse
import sys
from typing import Dict, Optional, Sequence, Tuple

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc

from . import configs
from .corpus import read_docs
from .prompts import label_dict
from .scoring import score_pipeline

# the starting adapter's plain decisions: the likelier of opening and ending, every entity kept
GREEDY = {"answer_threshold": 0.5, "threshold": 0.0}
# The least share of the training sentences' entities the starting adapter must find zero-shot
# (strict recall) for rehearsal to be used. Chosen on dev (docs/experiments.md): on WNUT-17's
# shots it finds 0.28 to 0.50 and own text added 4.8 F1; on GUM's, 0.04 to 0.11, where own
# text cost 8.0 and the source sentences 1.8 at K = 5.
MIN_RECALL = 0.2
REFUSED = 3  # the exit status of the commands that check, when the check rejects
# What trains with the shots where the check rejects the adapter's convention: the shots alone
# (the default, chosen on GUM dev: docs/experiments.md) or the source rehearsal. For the
# scripts that train the recipe (the project's train_custom.py and compare.py).
IF_REJECTED = ("shots", "source")


def zero_shot_pipeline(labels: Dict[str, str], model: Optional[dict] = None) -> Language:
    """The starting adapter as a pipeline that decodes `labels` greedily; `model`: a config's
    [components.cllmfs_ner.model] block (default: the component's, the shipped adapter on
    SmolLM2)."""
    config = {"labels": labels, "decoding": dict(GREEDY)}
    if model is not None:
        config["model"] = model
    nlp = spacy.blank("en")
    nlp.add_pipe("cllmfs_ner", config=config)
    nlp.initialize()
    return nlp


def shots_recall(nlp: Language, shots: Sequence[Doc], labels: Dict[str, str]) -> Optional[float]:
    """The share of the shots' entities of `labels` that `nlp` finds, strictly; None when
    they hold none."""
    if not any(e.label_ in labels for doc in shots for e in doc.ents):
        return None
    return float(score_pipeline(nlp, shots, list(labels))["recall"])


def trusted(nlp: Language, shots: Sequence[Doc], labels: Dict[str, str],
            min_recall: float) -> Tuple[bool, Optional[float]]:
    """Whether `nlp` knows the shots' convention, and the recall that says so: yes when it
    finds at least `min_recall` of the shots' entities (shots_recall); also when `min_recall`
    is 0 (no check: recall None) or the shots hold no entity to check it on."""
    if min_recall <= 0:
        return True, None
    recall = shots_recall(nlp, shots, labels)
    return recall is None or recall >= min_recall, recall


def model_block(config_path) -> Optional[dict]:
    """The [components.cllmfs_ner.model] block of a training config (a file or a shipped
    config's name), or None when it has none."""
    config = spacy.util.load_config(configs.resolve(str(config_path)), interpolate=True)
    block = config.get("components", {}).get("cllmfs_ner", {}).get("model")
    return dict(block) if block else None


def check(shots: Sequence[Doc], labels: Dict[str, str], min_recall: float = MIN_RECALL,
          config=None, gpu_id: int = -1) -> Tuple[Language, bool, Optional[float]]:
    """The commands' shared step: the starting adapter (`config`'s model block; default: the
    component's) as a zero-shot pipeline, and trusted()'s verdict on the shots."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = zero_shot_pipeline(labels, model_block(config) if config else None)
    return (nlp, *trusted(nlp, shots, labels, min_recall))


def add_check_arguments(parser: argparse.ArgumentParser, refused: str, model: str) -> None:
    """The options of the commands that check: --min-recall (`refused`: what the command does
    below it), --config (`model`: what its model block does) and --gpu-id."""
    parser.add_argument("--min-recall", type=float, default=MIN_RECALL,
                        help=f"{refused} when the starting adapter finds less than this share "
                             "of the training sentences' entities (0: no check)")
    parser.add_argument("--config", default=None,
                        help=f"the training config, whose model block {model}")
    parser.add_argument("--gpu-id", type=int, default=-1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train", help="the training DocBin (the shots)")
    parser.add_argument("labels", help="the labels file the recipe trains on")
    add_check_arguments(parser, "exit with status 3", "is the starting adapter")
    args = parser.parse_args(argv)
    labels = label_dict(srsly.read_json(args.labels))  # read first: a bad file is an error
    shots = read_docs(args.train, spacy.blank("en").vocab)
    if args.min_recall <= 0:  # no check: no model to load
        print("Nothing checked (--min-recall 0).")
        return
    _, use, recall = check(shots, labels, args.min_recall, args.config, args.gpu_id)
    if recall is None:
        print(f"Nothing checked ({args.train} holds no entity of the labels).")
        return
    found = (f"Zero-shot, the starting adapter finds {recall:.0%} of the entities of "
             f"{args.train} (--min-recall {args.min_recall:g})")
    if not use:
        print(f"{found}: it does not know their convention.", file=sys.stderr)
        sys.exit(REFUSED)
    print(f"{found}: it knows their convention.")


if __name__ == "__main__":
    main()
