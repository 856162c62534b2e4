"""How predictions become `doc.ents`: overlaps resolved, existing entities respected, and each
entity's score kept where `ent._.cllmfs_score` finds it.

Overlapping predictions, within or across types, are resolved greedily: higher score first,
then the longer span, then the earlier one. Entities already in `doc.ents` are kept and new
entities that overlap them are dropped; with `overwrite`, new entities replace the existing
ones they overlap.
"""
from typing import List, Optional, Tuple

from spacy.tokens import Doc, Span

from .constraint import Entity

# doc._.cllmfs_scores: [label, start, end, score] per entity this component wrote. A list of
# lists, so that it survives Doc.to_bytes (msgpack), which nlp.pipe(n_process=N) uses.
if not Doc.has_extension("cllmfs_scores"):
    Doc.set_extension("cllmfs_scores", default=None)


def _span_score(span: Span) -> Optional[float]:
    for label, start, end, score in span.doc._.cllmfs_scores or []:
        if (label, start, end) == (span.label_, span.start, span.end):
            return score
    return None


if not Span.has_extension("cllmfs_score"):
    Span.set_extension("cllmfs_score", getter=_span_score)


def write(doc: Doc, prediction: List[Entity], *, overwrite: bool) -> None:
    scored = _without_overlaps(doc, prediction)
    new = [span for span, _ in scored]
    existing = list(doc.ents)
    if overwrite:
        ents = [e for e in existing if not any(_overlap(e, n) for n in new)] + new
    else:
        ents = existing + [n for n in new if not any(_overlap(e, n) for e in existing)]
    doc.ents = sorted(ents, key=lambda s: s.start)
    final = {(s.label_, s.start, s.end) for s in doc.ents}
    scores = {tuple(x[:3]): x[3] for x in doc._.cllmfs_scores or []}
    scores.update({(s.label_, s.start, s.end): score for s, score in scored})
    doc._.cllmfs_scores = [[*k, v] for k, v in scores.items() if k in final]


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _without_overlaps(doc: Doc, prediction: List[Entity]) -> List[Tuple[Span, float]]:
    """(span, score) of the predictions, overlaps resolved: higher score, then longer, then
    earlier."""
    ranked = sorted(prediction, key=lambda p: (-p.score, -(p.end - p.start), p.start))
    taken = [False] * len(doc)
    found = []
    for label, start, end, score in ranked:
        if not any(taken[start:end]):
            taken[start:end] = [True] * (end - start)
            found.append((Span(doc, start, end, label=label), score))
    return found
