"""Strict entity scores with seqeval, and their mean and spread over seeds.

Strict (seqeval's `mode="strict"`, IOB2): an entity counts only when its type and both
boundaries match. spaCy's Scorer gives the same micro figures for `doc.ents`; seqeval is
the reference the few-shot NER literature reports, so the project's tables use it.
"""
import random
import statistics
from typing import Dict, Iterable, List, Optional, Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.tokens import Doc
from spacy.training import biluo_to_iob, offsets_to_biluo_tags

METRICS = ("precision", "recall", "f1")


def unannotated(gold: Sequence[Doc], vocab) -> List[Doc]:
    """The gold docs' words and spaces without their annotations: what a pipeline is given
    when it is scored against them."""
    return [Doc(vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d])
            for d in gold]


def iob_tags(doc: Doc, labels: Optional[Iterable[str]] = None) -> List[str]:
    """IOB2 tags of the doc's entities, keeping only `labels` when given."""
    keep = None if labels is None else set(labels)
    spans = [
        (e.start_char, e.end_char, e.label_)
        for e in doc.ents
        if keep is None or e.label_ in keep
    ]
    return biluo_to_iob(offsets_to_biluo_tags(doc, spans))


def strict_scores(
    gold: Sequence[Doc], predicted: Sequence[Doc], labels: Optional[Iterable[str]] = None
) -> Dict:
    """Micro precision/recall/F1 and the same per type, as fractions in [0, 1].

    Both sides keep only `labels` (the types a model was trained for) when given. Every
    label in `labels` gets a per-type entry, with zeros when it never occurs.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold docs but {len(predicted)} predicted docs.")
    for g, p in zip(gold, predicted):
        if [t.text for t in g] != [t.text for t in p]:
            raise ValueError(f"Gold and predicted tokens differ for the doc {g.text[:60]!r}.")
    labels = None if labels is None else sorted(labels)
    y_true = [iob_tags(doc, labels) for doc in gold]
    y_pred = [iob_tags(doc, labels) for doc in predicted]
    empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    if not any(tag != "O" for tags in y_true + y_pred for tag in tags):
        return {**empty, "per_type": {label: dict(empty) for label in labels or []}}
    report = classification_report(
        y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    per_type = {
        name: _clean(values)
        for name, values in report.items()
        if not name.endswith(" avg")
    }
    for label in labels or []:
        per_type.setdefault(label, dict(empty))
    return {**_clean(report.get("micro avg", empty)), "per_type": per_type}


def fixed_subset(docs: Sequence, limit: int) -> List[int]:
    """The indices of a fixed subset of `docs`: `limit` of them drawn with random.Random(0), in
    corpus order (all of them when `limit` is 0 or not smaller), so that every system and run
    is scored on the same sentences."""
    if not limit or limit >= len(docs):
        return list(range(len(docs)))
    return sorted(random.Random(0).sample(range(len(docs)), limit))


def score_pipeline(nlp, gold: Sequence[Doc], labels: Optional[Iterable[str]] = None,
                   batch_size: int = 32) -> Dict:
    """Strict scores of `nlp` on the gold docs: it is given their words alone (unannotated),
    and entities of other labels than `labels` (when given) are left out on both sides."""
    predicted = list(nlp.pipe(unannotated(gold, nlp.vocab), batch_size=batch_size))
    return strict_scores(gold, predicted, labels)


def _clean(values: Dict) -> Dict:
    return {
        "precision": float(values["precision"]),
        "recall": float(values["recall"]),
        "f1": float(values["f1-score"] if "f1-score" in values else values["f1"]),
        "support": int(values["support"]),
    }


def aggregate(runs: Sequence[Dict]) -> Dict:
    """Mean of each score over runs (seeds) and its sample standard deviation (0 for one run).

    Top-level keys: precision, recall, f1 (means), their *_std, per_type (same shape), n_runs.
    """
    if not runs:
        raise ValueError("No runs to aggregate.")
    result = _mean_std(runs)
    types = sorted({name for run in runs for name in run["per_type"]})
    result["per_type"] = {
        name: _mean_std([run["per_type"][name] for run in runs if name in run["per_type"]])
        for name in types
    }
    result["n_runs"] = len(runs)
    return result


def _mean_std(runs: Sequence[Dict]) -> Dict:
    out = {}
    for key in METRICS:
        values = [run[key] for run in runs]
        out[key] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["support"] = statistics.fmean(run["support"] for run in runs)
    return out


def markdown_table(rows: Dict[str, Dict]) -> str:
    """One line per named result: P, R, F1 (mean ± std over seeds), in percent."""
    lines = [
        "| run | seeds | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, m in rows.items():
        cells = [f"{100 * m[k]:.1f} ± {100 * m[k + '_std']:.1f}" for k in METRICS]
        lines.append(f"| {name} | {m['n_runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
