"""Helpers for tests: a spaCy pipeline on the tiny random Llama, a little training, and the
project's scripts as modules."""
import importlib.util
import sys
from pathlib import Path

import spacy
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Adam

TINY = {"@misc": "spacy_cllmfs.TinyLlama.v1"}
LABELS = {"PERSON": "names of people", "ORG": "companies, agencies, institutions"}

# Written for these tests.
TRAIN = [
    ("Tim Cook said Apple will open an office in Lagos.", [(0, 8, "PERSON"), (14, 19, "ORG")]),
    ("Maria Lopez flew from Madrid.", [(0, 11, "PERSON")]),
    ("The board of Northwind Labs met on Monday.", [(13, 27, "ORG")]),
]
# Sentences the trained pipelines have not seen (written for these tests): training further.
UNSEEN = [
    ("Angela Ruiz joined Contoso Bank in March.", [(0, 11, "PERSON"), (19, 31, "ORG")]),
    ("Omar Haddad spoke for Fabrikam.", [(0, 11, "PERSON"), (22, 30, "ORG")]),
]


def tiny_nlp(labels=LABELS, *, base_model=None, **config):
    """A pipeline with cllmfs_ner on the tiny model. Blocks such as decoding={...} or
    loss={...} are merged into the component's defaults."""
    nlp = spacy.blank("en")
    model = {"base_model": {**TINY, **(base_model or {})}}
    nlp.add_pipe("cllmfs_ner", config={"labels": labels, "model": model, **config})
    return nlp


def examples(nlp, data=TRAIN):
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in data]


def train(nlp, data=TRAIN, steps=60, learn_rate=0.01, seed=0):
    """Overfit `data`. The seed is fixed first, so that LoRA's initialisation and dropout,
    and so the predictions, do not depend on which tests ran before."""
    fix_random_seed(seed)
    egs = examples(nlp, data)
    nlp.initialize(lambda: egs)
    optimizer = Adam(learn_rate)
    for _ in range(steps):
        nlp.update(egs, sgd=optimizer)
    return nlp


def ents(doc):
    return [(e.start_char, e.end_char, e.label_, e._.cllmfs_score) for e in doc.ents]


def load_script(name: str):
    """project/scripts/<name>.py as a module; its folder is on sys.path while it loads, as
    when it runs as a script (compare.py imports card.py from there)."""
    path = Path(__file__).resolve().parents[1] / "project" / "scripts" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
