"""The few-shot schedule: training length scaled by the number of training sentences.

A fixed number of steps is many epochs for K = 1 and few for K = 20. Here the length is a
number of epochs over the shots, with a floor, and the learning rate warms up linearly over the
first `warmup` share of the steps and decays linearly to zero (thinc's warmup_linear):

    steps = max(min_steps, ceil(epochs x sentences / batch size))

`overrides` turns it into `spacy train` overrides for a config whose learning rate is a
warmup_linear schedule ([training.optimizer.learn_rate]) and whose batcher has a fixed `size`,
or, for the packaged recipe (configs/fewshot.cfg, whose blocks count the corpus themselves:
recipe.py), into the settings of those blocks. `resumed_warmup_linear` continues a warmup_linear
schedule from a later step, for training in chunks.
"""
import math
from typing import List

from spacy.util import registry
from thinc.api import warmup_linear


def fewshot_steps(n_docs: int, batch_size: int, epochs: float, min_steps: int = 20) -> int:
    if n_docs < 1 or batch_size < 1 or epochs <= 0:
        raise ValueError(
            f"A schedule needs at least one training sentence, a batch size >= 1 and epochs "
            f"> 0; got {n_docs} sentences, batch size {batch_size}, {epochs} epochs."
        )
    return max(min_steps, math.ceil(epochs * n_docs / batch_size))


def eval_frequency(steps: int, evaluations: int = 1) -> int:
    """Evaluate `evaluations` times over `steps` (once, at the end, by default)."""
    return max(1, steps // evaluations)


def overrides(config, n_docs: int, epochs: float, warmup: float = 0.1,
              min_steps: int = 20, evaluations: int = 1) -> List[str]:
    """`spacy train` overrides: max_steps, the schedule's total and warmup steps, and the
    evaluation frequency: by default one evaluation at the end (a few-shot user has no dev
    set to choose a checkpoint with)."""
    training = config["training"]
    if isinstance(training["max_steps"], dict):
        # The packaged recipe (recipe.py) counts its corpus itself: pass the settings only.
        blocks = ("training.max_steps", "training.eval_frequency",
                  "training.optimizer.learn_rate")
        found = [item for block in blocks
                 for item in (f"--{block}.epochs", str(epochs), f"--{block}.min_steps",
                              str(min_steps))]
        return found + ["--training.eval_frequency.evaluations", str(evaluations),
                        "--training.optimizer.learn_rate.warmup", str(warmup)]
    schedule = training["optimizer"].get("learn_rate")
    if not isinstance(schedule, dict) or schedule.get("@schedules") != "warmup_linear.v1":
        raise ValueError(
            "The few-shot schedule needs [training.optimizer.learn_rate] with "
            "@schedules = \"warmup_linear.v1\" in the training config."
        )
    steps = fewshot_steps(n_docs, int(training["batcher"]["size"]), epochs, min_steps)
    section = "--training.optimizer.learn_rate"
    return ["--training.max_steps", str(steps),
            "--training.eval_frequency", str(eval_frequency(steps, evaluations)),
            f"{section}.total_steps", str(steps),
            f"{section}.warmup_steps", str(max(1, round(warmup * steps)))]


@registry.schedules("spacy_cllmfs.resumed_warmup_linear.v1")
def resumed_warmup_linear(initial_rate: float, warmup_steps: int, total_steps: int,
                          done_steps: int = 0):
    """thinc's warmup_linear, from step `done_steps` on: a training run that continues an
    earlier one (the project's chunked source training) goes on with the learning rate where
    the earlier one stopped."""
    if done_steps < 0:
        raise ValueError(f"done_steps must be >= 0, got {done_steps}.")
    rates = warmup_linear(initial_rate, warmup_steps, total_steps)
    for _ in range(done_steps):
        next(rates)
    return rates
