"""Training rows: one (prompt, response) pair per example and entity type.

The response lists the type's gold entities in the order they appear, each written as the
constrained decoder would write it; a sentence with no entity of a type trains the empty
response. Overlapping gold spans of one type are kept as spaCy stores them (doc.ents never
overlap).
"""
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

import torch

from .prompts import EncodedText, Layout, Prompter

IGNORE = -100  # the label transformers' cross-entropy skips


@dataclass
class Row:
    text: EncodedText
    label: str
    prompt: Tuple[int, ...]
    response: Tuple[int, ...]
    # (start, end) character offsets of each gold entity of this type in the text
    entities: List[Tuple[int, int]]
    # where the text's tokens and the type name sit in the prompt
    layout: Layout


def build_rows(docs: Iterable, prompter: Prompter, labels: Sequence[str]) -> List[Row]:
    rows = []
    for doc in docs:
        text = prompter.encode_text(doc.text)
        for label in labels:
            ents = [e for e in doc.ents if e.label_ == label]
            spans = prompter.encode_spans([e.text for e in ents])
            rows.append(
                Row(
                    text=text,
                    label=label,
                    prompt=prompter.prompt_ids(text, label),
                    response=prompter.response_ids(spans),
                    entities=[(e.start_char, e.end_char) for e in ents],
                    layout=prompter.layout(text, label),
                )
            )
    return rows


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
