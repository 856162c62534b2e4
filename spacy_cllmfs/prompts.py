"""Prompts in the paper's supervised-fine-tuning form, as token ids.

The template puts the text first and the entity type after it, so that one text's key/value
cache serves every type. A template whose prefix holds `{types}` lists every asked type with its
description there, once, in the prefix all prompts share (`type_line` per type), and asks a short
question per type; one without lists nothing and puts the description in each question.

Each part is tokenized on its own and the ids are concatenated, the same way in training and in
inference; so the ids of an entity in a response are exactly the ids the constrained decoder
allows, and positions of the type name and the text are known without searching.
"""
import json
from dataclasses import dataclass
from importlib import resources
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

Labels = Union[List[str], Dict[str, str]]  # names, or name -> description


def label_dict(labels: Optional[Labels]) -> Dict[str, str]:
    """Validated name -> description (a missing description is the name)."""
    if not labels:
        return {}
    pairs = list(labels.items()) if isinstance(labels, dict) else [(x, x) for x in labels]
    for label, description in pairs:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Entity labels must be non-empty strings, got {label!r}.")
        if not isinstance(description, str):
            raise ValueError(f"The description of {label!r} must be a string.")
    return {label: description or label for label, description in pairs}


@dataclass(frozen=True)
class Template:
    name: str
    prefix: str
    text: str
    question: str
    open: str
    span: str
    close: str
    type_line: str = ""  # one line of the prefix's {types} list: "{label}" and "{description}"

    @classmethod
    def load(cls, name: str) -> "Template":
        """Load a versioned template shipped with the package, e.g. "ner.v1"."""
        path = resources.files("spacy_cllmfs") / "templates" / f"{name}.json"
        if not path.is_file():
            known = sorted(
                p.name[: -len(".json")]
                for p in (resources.files("spacy_cllmfs") / "templates").iterdir()
                if p.name.endswith(".json")
            )
            raise ValueError(f"Unknown prompt template {name!r}. Known templates: {known}")
        data = json.loads(path.read_text(encoding="utf8"))
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Question:
    """The ids of one entity type's question and where its name sits among them."""

    ids: Tuple[int, ...]
    name_start: int
    name_end: int


@dataclass(frozen=True)
class EncodedText:
    """The ids of a text (template.text filled in) and each text token's character offsets."""

    ids: Tuple[int, ...]
    # Character offsets into the document text for ids[text_start:text_end]
    offsets: Tuple[Tuple[int, int], ...]
    text_start: int
    text_end: int


@dataclass(frozen=True)
class Layout:
    """Where one prompt's parts sit among its ids: the document's tokens, the type's name."""

    text_start: int
    text_end: int
    name_start: int
    name_end: int


class Prompter:
    """Turns texts, labels and entities into token ids with a tokenizer and a template.

    labels (name -> description) are the component's: the prompter encodes their questions
    once and is rebuilt when they change.
    """

    def __init__(self, tokenizer, template: Template, labels: Dict[str, str]):
        self.tokenizer = tokenizer
        self.template = template
        self.eos_id = tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id
        # A prefix without {types} is the same for every prompt: encode it once.
        self._fixed_prefix = None if "{types}" in template.prefix else self.encode(template.prefix)
        self.prefix_ids = self.prefix_for(labels.items())
        self.open_ids = self.encode(template.open)
        self.close_ids = self.encode(template.close)
        if not self.open_ids or not self.close_ids:
            raise ValueError(f"Template {template.name!r} has an empty delimiter.")
        self._questions: Dict[Tuple[str, str], Question] = {}
        self.questions = {label: self.question(label, d) for label, d in labels.items()}

    def encode(self, text: str) -> Tuple[int, ...]:
        if not text:
            return ()
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prefix_for(self, types: Iterable[Tuple[str, str]]) -> Tuple[int, ...]:
        """The prefix's ids, listing the (name, description) types where the template has
        {types}; the component's prefix lists its labels, a training row's the types asked."""
        if self._fixed_prefix is not None:
            return self._fixed_prefix
        listed = "".join(
            self.template.type_line.format(label=name, description=description or name)
            for name, description in types
        )
        return self.encode(self.template.prefix.replace("{types}", listed))

    def question(self, label: str, description: str) -> Question:
        """The question for a type, by the name and description the prompt shows."""
        key = (label, description)
        if key not in self._questions:
            self._questions[key] = self._question(label, description)
        return self._questions[key]

    def _question(self, label: str, description: str) -> Question:
        before, after = self.template.question.split("{label}", 1)
        name = label
        # Keep the space before the name with the name, as the tokenizer would in running text.
        if before.endswith(" "):
            before, name = before[:-1], " " + label
        head, name_ids = self.encode(before), self.encode(name)
        tail = self.encode(after.format(description=description or label, label=label))
        return Question(head + name_ids + tail, len(head), len(head) + len(name_ids))

    def encode_text(self, text: str) -> EncodedText:
        before, after = self.template.text.split("{text}", 1)
        head = self.encode(before)
        if text:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = tuple(enc["input_ids"]), tuple(map(tuple, enc["offset_mapping"]))
        else:
            ids, offsets = (), ()
        return EncodedText(head + ids + self.encode(after), offsets, len(head), len(head) + len(ids))

    def encode_spans(self, texts: Sequence[str]) -> List[Tuple[int, ...]]:
        if not texts:
            return []
        filled = [self.template.span.format(span=text) for text in texts]
        return [tuple(ids) for ids in self.tokenizer(filled, add_special_tokens=False)["input_ids"]]

    def prompt_ids(self, text: EncodedText, label: str) -> Tuple[int, ...]:
        return self.prefix_ids + text.ids + self.questions[label].ids

    def layout(self, text: EncodedText, label: str) -> Layout:
        """The positions, in prompt_ids(text, label), of the text's tokens and the type name."""
        return self.compose(self.prefix_ids, text, self.questions[label])[1]

    def compose(
        self, prefix: Tuple[int, ...], text: EncodedText, question: Question
    ) -> Tuple[Tuple[int, ...], Layout]:
        """A prompt's ids (prefix, text, question) and where its text and type name sit."""
        text_at = len(prefix)
        question_at = text_at + len(text.ids)
        return prefix + text.ids + question.ids, Layout(
            text_at + text.text_start,
            text_at + text.text_end,
            question_at + question.name_start,
            question_at + question.name_end,
        )

    def response_ids(self, spans: Sequence[Tuple[int, ...]]) -> Tuple[int, ...]:
        ids: Tuple[int, ...] = ()
        for span in spans:
            ids += self.open_ids + tuple(span) + self.close_ids
        return ids + (self.eos_id,)
