"""A spaCy training logger (for `spacy train --code scripts/training_log.py`) that writes each
evaluation's step, losses and scores to a JSONL file beside the console table, so that
scripts/card.py can draw the loss curve. Chain it with the console logger:

    [training.logger]
    @loggers = "spacy.ChainLogger.v1"

    [training.logger.logger1]
    @loggers = "spacy.ConsoleLogger.v1"
    progress_bar = false

    [training.logger.logger2]
    @loggers = "cllmfs_project.JSONLLogger.v1"
    path = ${paths.log}
"""
import json
import time
from pathlib import Path

from spacy.util import registry


@registry.loggers("cllmfs_project.JSONLLogger.v1")
def jsonl_logger(path: str):
    def setup(nlp, stdout=None, stderr=None):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        file_ = target.open("w", encoding="utf8")
        started = time.time()

        def log_step(info):
            if info is None:
                return
            record = {"step": info["step"], "epoch": info["epoch"],
                      "seconds": round(time.time() - started, 1),
                      "losses": info["losses"], "score": info["score"],
                      "other_scores": {k: v for k, v in info["other_scores"].items()
                                       if k in ("ents_f", "ents_p", "ents_r")}}
            file_.write(json.dumps(record) + "\n")
            file_.flush()

        return log_step, file_.close

    return setup
