"""Training rows: one (prompt, response) pair per example and entity type asked, or, with a
joint template, one per example asking about all of its types at once.

The response lists the type's gold entities (a joint row's: every asked type's, each under its
type's name) in the order they appear, each written as the constrained decoder would write it;
a sentence with no entity of a type trains the empty response. Overlapping gold spans of one
type are kept as spaCy stores them (doc.ents never overlap).

Which types a sentence is asked about: by default the component's labels, all of them. A doc
can name its own types in `doc.user_data["cllmfs_types"]` ({label: {"description": str,
"names": [str, ...]}}): the types its corpus annotates, since only for those is a missing entity
a true "none" (the source stage mixes corpora with different types). The row settings
([components.cllmfs_ner.rows]) can then ask only a sample of the absent types next to the
present ones, show each type under a varied surface form (another name, another case, or
its description alone), and vary the description too (the description, its paraphrase, or the
name alone, as a user's plain list of labels is asked), so that a model learns to read the
question instead of memorising one wording. Sampling uses Python's `random`, which spaCy's
trainer seeds.
"""
import random
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from spacy.util import registry

from .prompts import ALL_TYPES, EncodedText, Layout, Prompter

IGNORE = -100  # the label transformers' cross-entropy skips


@dataclass
class Row:
    text: EncodedText
    label: str  # the type asked, or ALL_TYPES for a joint row
    prompt: Tuple[int, ...]
    response: Tuple[int, ...]
    # (start, end) character offsets of each gold entity of this type in the text
    entities: List[Tuple[int, int]]
    # where the text's tokens and the type name sit in the prompt
    layout: Layout
    # a joint row's: the type of each entity (a per-type row's are all `label`)
    entity_labels: Tuple[str, ...] = ()

    def typed_entities(self) -> List[Tuple[str, int, int]]:
        """(type, start, end) character offsets of each gold entity the response lists."""
        labels = self.entity_labels or (self.label,) * len(self.entities)
        return [(label, start, end) for label, (start, end) in zip(labels, self.entities)]


TYPES_KEY = "cllmfs_types"


# Padded positions per training pass: activation memory grows with it (about 3.2 MB a position
# for SmolLM2-135M in float32 with LoRA on all seven projections, measured: 3.2 GB peak at 512,
# 4.8 GB at 1024), not with the batch or the number of types (passes.py).
PASS_TOKENS = 512


@dataclass(frozen=True)
class RowSettings:
    """Which types each training sentence is asked about, under which names, and how many
    padded positions one training pass may hold."""

    absent_types: Optional[int] = None  # None: every type; n: the present ones + n absent
    vary_names: bool = False
    pass_tokens: int = PASS_TOKENS
    vary_descriptions: bool = False

    def __post_init__(self):
        if self.absent_types is not None and self.absent_types < 0:
            raise ValueError(f"rows.absent_types must be >= 0 or null, got {self.absent_types}.")
        if not isinstance(self.pass_tokens, int) or self.pass_tokens < 1:
            raise ValueError(f"rows.pass_tokens must be an integer >= 1, got {self.pass_tokens!r}.")


@registry.misc("spacy_cllmfs.Rows.v1")
def row_settings(absent_types: Optional[int] = None, vary_names: bool = False,
                 pass_tokens: int = PASS_TOKENS,
                 vary_descriptions: bool = False) -> RowSettings:
    """[components.cllmfs_ner.rows]: ask every type (absent_types = null) or the present
    types and `absent_types` sampled absent ones; vary_names shows varied type names;
    vary_descriptions shows a type's description, its paraphrase or its name alone;
    pass_tokens bounds the padded positions of one training pass (memory)."""
    return RowSettings(absent_types, vary_names, pass_tokens, vary_descriptions)


@dataclass(frozen=True)
class TypeInfo:
    description: str
    names: Tuple[str, ...] = ()
    paraphrase: str = ""  # the description in other words (empty: none)


def doc_types(doc, labels: Dict[str, str]) -> Dict[str, TypeInfo]:
    """The types a doc's annotators looked for: its own (user_data) or the component's."""
    own = doc.user_data.get(TYPES_KEY)
    if own is None:
        return {label: TypeInfo(description) for label, description in labels.items()}
    if not isinstance(own, dict) or not own:
        raise ValueError(
            f"doc.user_data[{TYPES_KEY!r}] must be a non-empty dict of label -> "
            f"{{'description': ..., 'names': [...]}}, got {own!r} (text: {doc.text[:40]!r})."
        )
    types = {label: TypeInfo(info.get("description") or label, tuple(info.get("names", ())),
                             info.get("paraphrase") or "")
             for label, info in own.items()}
    unknown = sorted({e.label_ for e in doc.ents} - set(types))
    if unknown:
        raise ValueError(
            f"The doc {doc.text[:40]!r} has entities of {unknown}, which its "
            f"user_data[{TYPES_KEY!r}] does not list among its types {sorted(types)}."
        )
    return types


def surface(label: str, info: TypeInfo, rng: random.Random, vary_names: bool = True,
            vary_descriptions: bool = False) -> Tuple[str, str]:
    """(name, description) to show for a type. vary_names: one of its names or its description
    alone, sometimes lower- or upper-cased. vary_descriptions: a named type's description is its
    description (half the time), its paraphrase or the name alone (a quarter each; without a
    paraphrase, the description)."""
    name, description = label, info.description
    if vary_names:
        options = [(name, info.description) for name in dict.fromkeys((label, *info.names))]
        options.append((info.description, info.description))
        name, description = rng.choice(options)
        if name != description:
            roll = rng.random()
            name = name.lower() if roll < 0.2 else name.upper() if roll < 0.3 else name
    if vary_descriptions and name != description:
        roll = rng.random()
        if roll >= 0.75:
            description = name
        elif roll >= 0.5 and info.paraphrase:
            description = info.paraphrase
    return name, description


def asked_types(doc, types: Dict[str, TypeInfo], settings: RowSettings,
                rng: random.Random) -> List[str]:
    if settings.absent_types is None:
        return list(types)
    present = {e.label_ for e in doc.ents}
    absent = [label for label in types if label not in present]
    if len(absent) <= settings.absent_types:  # all of them: nothing to draw, no draw taken
        return list(types)
    chosen = set(rng.sample(absent, settings.absent_types))
    return [label for label in types if label in present or label in chosen]


def build_rows(docs: Iterable, prompter: Prompter, labels: Dict[str, str],
               settings: RowSettings = RowSettings(),
               rng: Optional[random.Random] = None) -> List[Row]:
    """The rows of gold docs; labels (name -> description) are the component's."""
    rng = rng or random  # type: ignore[assignment]
    rows = []
    for doc in docs:
        text = prompter.encode_text(doc.text)
        types = doc_types(doc, labels)
        asked = asked_types(doc, types, settings, rng)
        if settings.vary_names or settings.vary_descriptions:
            rng.shuffle(asked)
            shown = {label: surface(label, types[label], rng, settings.vary_names,
                                    settings.vary_descriptions) for label in asked}
        else:
            shown = {label: (label, types[label].description) for label in asked}
        if prompter.template.joint:
            rows.append(_joint_row(doc, text, prompter, asked, shown))
            continue
        prefix = prompter.prefix_for(shown.values())
        for label in asked:
            ents = [e for e in doc.ents if e.label_ == label]
            spans = prompter.encode_spans([e.text for e in ents])
            prompt, layout = prompter.compose(prefix, text, prompter.question(*shown[label]))
            rows.append(
                Row(
                    text=text,
                    label=label,
                    prompt=prompt,
                    response=prompter.response_ids(spans),
                    entities=[(e.start_char, e.end_char) for e in ents],
                    layout=layout,
                )
            )
    return rows


def _joint_row(doc, text: EncodedText, prompter: Prompter, asked: List[str],
               shown: Dict[str, Tuple[str, str]]) -> Row:
    """One row asking about every type in `asked` (listed in the prefix as `shown`); its
    response writes each gold entity of those types under the name the prefix shows."""
    prefix, listed = prompter.prefix_layout([shown[label] for label in asked])
    names = tuple((label, lo, hi) for label, (_, lo, hi) in zip(asked, listed))
    ents = [e for e in doc.ents if e.label_ in shown]
    spans = prompter.encode_spans([e.text for e in ents])
    prompt, layout = prompter.compose(prefix, text, prompter.questions[ALL_TYPES], names)
    return Row(
        text=text,
        label=ALL_TYPES,
        prompt=prompt,
        response=prompter.response_ids(spans, [shown[e.label_][0] for e in ents]),
        entities=[(e.start_char, e.end_char) for e in ents],
        layout=layout,
        entity_labels=tuple(e.label_ for e in ents),
    )


def collate(rows: List[Row], pad_id: int, device) -> dict:
    """Right-padded input ids, attention mask and labels (response tokens only)."""
    width = max(len(r.prompt) + len(r.response) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, row in enumerate(rows):
        seq = row.prompt + row.response
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(row.prompt) : len(seq)] = torch.tensor(row.response)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
