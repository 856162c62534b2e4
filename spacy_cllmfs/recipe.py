"""The few-shot recipe as config parts, so that plain `spacy train` runs it on any DocBin.

- `spacy_cllmfs.FewShotCorpus.v1` ([corpora.train]): the user's sentences, and with them
  `rehearsal` sentences of the source corpora (the converted `corpus/source/train.spacy` of the
  project's `convert-source` step), each asked about its own corpus's types, so that training
  on a handful of shots does not wipe out what the general adapter knows. Without that file,
  training runs on the user's sentences alone and says so in one warning line.
- `spacy_cllmfs.FewShotSteps.v1` ([training.max_steps], [training.eval_frequency]) and
  `spacy_cllmfs.fewshot_warmup_linear.v1` ([training.optimizer.learn_rate]): the length follows
  the number of training sentences (schedule.py: epochs over the shots and the rehearsal
  sentences, with a floor), with a linear warmup and decay over exactly those steps.
"""
import logging
import random
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry
from thinc.api import warmup_linear

from .corpus import read_docs
from .rows import TYPES_KEY
from .schedule import eval_frequency, fewshot_steps

logger = logging.getLogger("spacy_cllmfs")
_warned = set()  # spacy train reads the corpus more than once: one warning line per path


def rehearsal_docs(path: Optional[str], n: int, seed: int, vocab) -> List:
    """`n` sentences of the source corpora at `path`, drawn with random.Random(seed) and kept
    in corpus order; none (with one warning line) when `path` is unset or missing."""
    if n <= 0:
        return []
    if not path or not Path(path).is_file():
        if path not in _warned:
            _warned.add(path)
            where = f"at {path}" if path else "given (paths.rehearsal)"
            logger.warning(
                "No rehearsal corpus %s: training on your sentences alone. The recipe mixes "
                "in %d source sentences (corpus/source/train.spacy, from `spacy project "
                "assets --extra` and `spacy project run convert-source` in the project).",
                where, n)
        return []
    pool = read_docs(path, vocab)
    if n > len(pool):
        raise ValueError(f"rehearsal = {n}, but {path} holds only {len(pool)} sentences.")
    docs = [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), n))]
    untyped = [d.text[:40] for d in docs if TYPES_KEY not in d.user_data]
    if untyped:
        raise ValueError(
            f"{path}: sentences without their corpus's types in user_data[{TYPES_KEY!r}] "
            f"(convert the source corpora with the project's convert-source): {untyped[:3]}")
    return docs


def training_size(path: str, rehearsal_path: Optional[str], rehearsal: int) -> int:
    """The number of sentences FewShotCorpus.v1 yields per epoch."""
    from spacy.vocab import Vocab

    own = len(read_docs(path, Vocab()))
    has_rehearsal = rehearsal > 0 and rehearsal_path and Path(rehearsal_path).is_file()
    return own + (rehearsal if has_rehearsal else 0)


@registry.readers("spacy_cllmfs.FewShotCorpus.v1")
def fewshot_corpus(path, rehearsal_path=None, rehearsal: int = 32,
                   seed=0) -> Callable[[Language], Iterator[Example]]:
    """The user's DocBin at `path` and `rehearsal` source sentences from `rehearsal_path`."""
    cache = {}

    def read(nlp: Language) -> Iterator[Example]:
        _require(path)
        if "docs" not in cache:
            cache["docs"] = read_docs(path, nlp.vocab) + rehearsal_docs(
                rehearsal_path, rehearsal, int(seed), nlp.vocab)
        for doc in cache["docs"]:
            yield Example(nlp.make_doc(doc.text), doc)

    return read


# The arguments filled from other settings (${paths.train}, ${training.batcher.size}, ...)
# are untyped: `spacy assemble` resolves [training] without interpolating the config, so they
# arrive as those strings, or paths.train as null. Nothing trains then, and the length is the
# floor (min_steps); the corpus reader still refuses to train without paths.train.
@registry.misc("spacy_cllmfs.FewShotSteps.v1")
def fewshot_steps_for(path, rehearsal_path=None, rehearsal=32, epochs: float = 10.0,
                      batch_size=2, min_steps: int = 20, evaluations: int = 0) -> int:
    """Training steps for the corpus (evaluations 0), or, with evaluations = n, the
    eval_frequency that evaluates n times over them."""
    if path is None or any(_unresolved(v) for v in (path, rehearsal_path, rehearsal, batch_size)):
        steps = min_steps
    else:
        steps = fewshot_steps(training_size(path, rehearsal_path, int(rehearsal)),
                              int(batch_size), epochs, min_steps)
    return eval_frequency(steps, evaluations) if evaluations else steps


@registry.schedules("spacy_cllmfs.fewshot_warmup_linear.v1")
def fewshot_warmup_linear(initial_rate: float, path, rehearsal_path=None, rehearsal=32,
                          epochs: float = 10.0, batch_size=2, min_steps: int = 20,
                          warmup: float = 0.1):
    """thinc's warmup_linear over the recipe's steps: `warmup` of them warming up."""
    steps = fewshot_steps_for(path, rehearsal_path, rehearsal, epochs, batch_size, min_steps)
    return warmup_linear(initial_rate, max(1, round(warmup * steps)), steps)


def _unresolved(value) -> bool:
    """A ${...} reference that was not interpolated."""
    return isinstance(value, str) and "${" in value


def _require(path: Optional[str]) -> None:
    """The blocks may be filled without a corpus (spacy assemble, spacy init); training
    needs one."""
    if not path:
        raise ValueError("The few-shot recipe trains on paths.train: give your DocBin with "
                         "--paths.train PATH.spacy.")
