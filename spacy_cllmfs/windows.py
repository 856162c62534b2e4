"""Documents longer than the model's context: split into windows, then map entities back.

A window's text may use the model's context (`max_position_embeddings`) minus the prompt
around it (the prefix, the longest question) and `max_new_tokens`. A document that fits is
one window. Otherwise, with sentence boundaries (a sentencizer or parser before this
component), consecutive sentences are packed into windows; a sentence that is too long on its
own, or a document without sentence boundaries, is cut into windows of spaCy tokens that
overlap by `overlap` tokens (the component passes max_span_tokens + 1). An entity the model
finds touching a cut is dropped: it may be a fragment of a longer one, and with that overlap
the neighbouring window holds every span of at most max_span_tokens tokens that touches the
cut whole, away from its own cuts. So an entity on a boundary is found, not lost and not cut.
Entities map back by the window's start; one found in two windows is kept once (pipe.py).
A single spaCy token longer than the whole budget cannot be read and gets no entity.
"""
import bisect
from typing import Callable, List, Sequence, Tuple

from spacy.tokens import Doc

# spaCy token range [start, end), and whether each side is a cut inside running text
Window = Tuple[int, int, bool, bool]


def token_counter(offsets: Sequence[Tuple[int, int]]) -> Callable[[int, int], int]:
    """count(a, b): how many model tokens of the whole text start in characters [a, b)."""
    starts = [start for start, _ in offsets]
    return lambda a, b: bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a)


def split(doc: Doc, budget: int, count: Callable[[int, int], int], overlap: int) -> List[Window]:
    if budget < 1:
        raise ValueError(f"The window budget must be at least one model token, got {budget}.")
    if not len(doc) or count(0, len(doc.text)) <= budget:
        return [(0, len(doc), False, False)]
    if not doc.has_annotation("SENT_START"):
        return _token_windows(doc, 0, len(doc), budget, count, overlap)
    windows: List[Window] = []
    current = None
    for sent in doc.sents:
        if _size(doc, sent.start, sent.end, count) > budget:
            if current:
                windows.append((*current, False, False))
                current = None
            windows.extend(_token_windows(doc, sent.start, sent.end, budget, count, overlap))
        elif current and _size(doc, current[0], sent.end, count) <= budget:
            current = (current[0], sent.end)
        else:
            if current:
                windows.append((*current, False, False))
            current = (sent.start, sent.end)
    if current:
        windows.append((*current, False, False))
    return windows


def _size(doc: Doc, start: int, end: int, count) -> int:
    return count(doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text))


def _token_windows(doc, lo: int, hi: int, budget: int, count, overlap: int) -> List[Window]:
    windows: List[Window] = []
    start = lo
    while start < hi:
        if _size(doc, start, start + 1, count) > budget:
            start += 1  # one token longer than the whole context: nothing fits around it
            continue
        end = start + 1
        while end < hi and _size(doc, start, end + 1, count) <= budget:
            end += 1
        windows.append((start, end, start > lo, end < hi))
        if end >= hi:
            break
        start = max(start + 1, end - overlap)
    return windows
