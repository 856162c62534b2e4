"""A spaCy training logger (`spacy_cllmfs.JSONLLogger.v1`, found through the package's entry
points: no `--code` needed) that writes each
evaluation's step, losses and scores to a JSONL file beside the console table, so that
the project's card can draw the loss curve, and every update of the cllmfs_ner component (its loss,
cross-entropy, InfoNCE and answer rates: the model's share of rows it would open an answer for,
and the gold share) as {"update": i, ...} lines, so that a collapse to "none" is visible step by
step. Chain it with the console logger:

    [training.logger]
    @loggers = "spacy.ChainLogger.v1"

    [training.logger.logger1]
    @loggers = "spacy.ConsoleLogger.v1"
    progress_bar = false

    [training.logger.logger2]
    @loggers = "spacy_cllmfs.JSONLLogger.v1"
    path = ${paths.log}
"""
import json
import time
from pathlib import Path

from typing import Optional

from spacy.util import registry


@registry.loggers("spacy_cllmfs.JSONLLogger.v1")
def jsonl_logger(path: Optional[str]):
    """path None: nothing is written (chain it with the console logger all the same)."""
    def setup(nlp, stdout=None, stderr=None):
        if path is None:
            return (lambda info: None), (lambda: None)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        file_ = target.open("w", encoding="utf8")
        started = time.time()
        pipe = nlp.get_pipe("cllmfs_ner") if "cllmfs_ner" in nlp.pipe_names else None
        written = [0]

        def write_updates():
            log = getattr(pipe, "update_log", [])
            for i in range(written[0], len(log)):
                file_.write(json.dumps({"update": i + 1, **log[i]}) + "\n")
            written[0] = len(log)

        def log_step(info):  # spacy train calls it every step, with None between evaluations
            write_updates()
            if info is None:
                file_.flush()
                return
            record = {"step": info["step"], "epoch": info["epoch"],
                      "seconds": round(time.time() - started, 1),
                      "losses": info["losses"], "score": info["score"],
                      "other_scores": {k: v for k, v in info["other_scores"].items()
                                       if k in ("ents_f", "ents_p", "ents_r")}}
            file_.write(json.dumps(record) + "\n")
            file_.flush()

        def finalize():
            write_updates()
            file_.close()

        return log_step, finalize

    return setup
