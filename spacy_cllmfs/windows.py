"""Documents longer than a window: split into windows, then map entities back.

The adapters learn from single sentences, whose answers are short; asked about a whole page at
once, a model writes a few entities and stops, or runs into `max_new_tokens`. So a window's
text holds at most `decoding.window_tokens` model tokens (about a training sentence or two),
and never more than the model's context (`max_position_embeddings`) leaves once the prompt
around it (the prefix, the longest question) and `max_new_tokens` are counted. A document
is read sentence by sentence (`units`: its marked sentences, or those spaCy's rule-based
sentencizer finds when it is longer than a window); with window_tokens 0, a document that fits
the context is one window and consecutive sentences are packed up to it. A sentence that is
too long on its own, or a document without sentences, is cut into windows of spaCy tokens that
overlap by `overlap` tokens (the component passes max_span_tokens + 1). An entity the model
finds touching a cut is dropped: it may be a fragment of a longer one, and with that overlap
the neighbouring window holds every span of at most max_span_tokens tokens that touches the
cut whole, away from its own cuts. So an entity on a boundary is found, not lost and not cut.
Entities map back by the window's start; one found in two windows is kept once, with its
best score (`merge`). A single spaCy token longer than the whole budget cannot be read and
gets no entity.
"""
import bisect
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, Span

from .constraint import Entity
from .prompts import EncodedText, Prompter

# spaCy token range [start, end), and whether each side is a cut inside running text
Window = Tuple[int, int, bool, bool]


class Unit(NamedTuple):
    """A document, or a window of one, and its encoded text."""

    doc_index: int
    offset: int  # of the window's first token in the document
    part: Union[Doc, Span]
    encoded: EncodedText
    cut_left: bool
    cut_right: bool


def prompt_overhead(prompter: Prompter, max_new_tokens: int) -> int:
    """Model positions a prompt needs besides its text: the prefix, the text's template around
    it, the longest type question and the answer."""
    return (
        len(prompter.prefix_ids)
        + len(prompter.encode_text("").ids)
        + max(len(q.ids) for q in prompter.questions.values())
        + max_new_tokens
        + 4  # a window re-tokenized on its own may take a token or two more
    )


def text_budget(
    context: Optional[int], prompter: Prompter, max_new_tokens: int, max_span_tokens: int
) -> Optional[int]:
    """How many model tokens of text a prompt can hold, from the model's context size
    (`max_position_embeddings`; None: no limit)."""
    if not context:
        return None
    budget = context - prompt_overhead(prompter, max_new_tokens)
    if budget < 4 * max_span_tokens:
        raise ValueError(
            f"The model's context ({context} tokens) leaves {budget} tokens for "
            f"the text once the instruction, the longest type question and "
            f"max_new_tokens ({max_new_tokens}) are counted: lower max_new_tokens or "
            f"shorten the label descriptions."
        )
    return budget


def window_budget(context: Optional[int], prompter: Prompter, decoding) -> Optional[int]:
    """Model tokens of text per window: `decoding.window_tokens` (0: no such limit), within
    what the model's context leaves for the text (None: no limit at all)."""
    budget = text_budget(context, prompter, decoding.max_new_tokens, decoding.max_span_tokens)
    window = getattr(decoding, "window_tokens", 0)
    if window and (budget is None or window < budget):
        return window
    return budget


def units(docs: Sequence[Doc], prompter: Prompter, context: Optional[int], decoding) -> List[Unit]:
    """The windows of the docs (decoding: DecoderSettings), each encoded for the prompt.

    With `decoding.window_tokens` set, a document with sentence boundaries is read sentence by
    sentence, as the adapters were trained (a sentence longer than the window is cut into
    token windows). A document without them that is longer than a window is read by the
    sentences spaCy's rule-based sentencizer finds in it (not written to the doc), else in
    token windows. With window_tokens 0, windows only where the model's context ends,
    sentences packed up to it. Token windows overlap by max_span_tokens + 1 (see above)."""
    budget = window_budget(context, prompter, decoding)
    by_sentence = bool(getattr(decoding, "window_tokens", 0))  # else the old rule: packed
    overlap = decoding.max_span_tokens + 1
    found = []
    for i, doc in enumerate(docs):
        encoded = prompter.encode_text(doc.text)
        fits = budget is None or encoded.text_end - encoded.text_start <= budget
        sentences = sentence_ranges(doc, guess=by_sentence and not fits)
        if fits and not (by_sentence and sentences and len(sentences) > 1):
            found.append(Unit(i, 0, doc, encoded, False, False))
            continue
        count = token_counter(encoded.offsets)
        for start, end, cut_left, cut_right in split(doc, budget, count, overlap,
                                                     pack=not by_sentence, sentences=sentences):
            part = doc[start:end]
            found.append(Unit(i, start, part, prompter.encode_text(part.text), cut_left, cut_right))
    return found


def sentence_ranges(doc: Doc, guess: bool = False) -> Optional[List[Tuple[int, int]]]:
    """The document's sentences as token ranges: those marked on it (a sentencizer or parser),
    else, with `guess`, those spaCy's rule-based Sentencizer would mark (the doc is not
    changed); None: no sentence boundaries."""
    if not len(doc):
        return None
    if doc.has_annotation("SENT_START"):
        return [(sent.start, sent.end) for sent in doc.sents]
    if not guess:
        return None
    from spacy.pipeline import Sentencizer

    (starts,) = Sentencizer().predict([doc])
    bounds = [i for i, start in enumerate(starts) if start or i == 0] + [len(doc)]
    return list(zip(bounds, bounds[1:]))


def merge(pieces: Sequence[Unit], found: Sequence[List[Entity]], n_docs: int) -> List[List[Entity]]:
    """The entities of each document, from those of its windows."""
    best: List[Dict[Tuple[str, int, int], float]] = [{} for _ in range(n_docs)]
    for unit, entities in zip(pieces, found):
        for label, start, end, score in entities:
            if (unit.cut_left and start == 0) or (unit.cut_right and end == len(unit.part)):
                continue  # maybe a fragment; the next window holds the span whole
            key = (label, start + unit.offset, end + unit.offset)
            doc = best[unit.doc_index]
            doc[key] = max(score, doc.get(key, 0.0))  # in two windows: once
    return [[Entity(*key, score) for key, score in doc.items()] for doc in best]


def token_counter(offsets: Sequence[Tuple[int, int]]) -> Callable[[int, int], int]:
    """count(a, b): how many model tokens of the whole text start in characters [a, b)."""
    starts = [start for start, _ in offsets]
    return lambda a, b: bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a)


def split(doc: Doc, budget: Optional[int], count: Callable[[int, int], int], overlap: int,
          pack: bool = True, sentences: Optional[Sequence[Tuple[int, int]]] = None) -> List[Window]:
    """Token windows [start, end) of `doc` of at most `budget` model tokens (None: no limit).
    With sentences (token ranges; default: those marked on the doc), windows hold whole
    sentences: consecutive ones packed together up to the budget (`pack`), or one each; a
    sentence over the budget is cut into token windows that overlap by `overlap` tokens, as is
    a document without sentences."""
    if budget is None:
        budget = count(0, len(doc.text)) or 1
    if budget < 1:
        raise ValueError(f"The window budget must be at least one model token, got {budget}.")
    if sentences is None:
        sentences = sentence_ranges(doc)
    if not len(doc) or ((pack or not sentences) and count(0, len(doc.text)) <= budget):
        return [(0, len(doc), False, False)]
    if not sentences:
        return _token_windows(doc, 0, len(doc), budget, count, overlap)
    windows: List[Window] = []
    current = None
    for start, end in sentences:
        if _size(doc, start, end, count) > budget:
            if current:
                windows.append((*current, False, False))
                current = None
            windows.extend(_token_windows(doc, start, end, budget, count, overlap))
        elif pack and current and _size(doc, current[0], end, count) <= budget:
            current = (current[0], end)
        else:
            if current:
                windows.append((*current, False, False))
            current = (start, end)
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
