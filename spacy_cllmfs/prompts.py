"""Prompts in the paper's supervised-fine-tuning form, as token ids.

The template puts the text first and the question after it, so that one text's key/value
cache serves every question. A template whose prefix holds `{types}` lists every asked type with
its description there, once, in the prefix all prompts share (`type_line` per type); one without
lists nothing and puts the description in each question.

Two answer forms:
- one question per (text, type) (ner.v1, ner.v2): the answer lists that type's entities, each
  as open + span + close;
- one question per text (a "joint" template, ner.v3: its `open` holds `{label}`): the answer
  lists the entities of every listed type, each as open(type name) + span + close, so the
  type is part of what the model writes. The rows of such a prompter are keyed by ALL_TYPES.

Each part is tokenized on its own and the ids are concatenated, the same way in training and in
inference; so the ids of an entity in a response are exactly the ids the constrained decoder
allows, and positions of the type name and the text are known without searching.
"""
import json
from dataclasses import dataclass
from importlib import resources
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

# names, name -> description, or name -> {"description": ..., ...} (label_dict)
Labels = Union[List[str], Dict[str, Union[str, Dict[str, object]]]]

# The one question of a joint template asks for every type: its row key (never a label, as
# labels are non-empty).
ALL_TYPES = ""


def label_dict(labels: Optional[Labels]) -> Dict[str, str]:
    """Validated name -> description (a missing description is the name). `labels` is a list
    of names, a dict name -> description, or name -> {"description": ..., ...} (the form of
    the project's type files); names starting with "_" (such as "_about") are notes, not
    labels. A non-empty `labels` with no label left is an error."""
    if not labels:
        return {}
    pairs = list(labels.items()) if isinstance(labels, dict) else [(x, x) for x in labels]
    kept = []
    for label, description in pairs:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Entity labels must be non-empty strings, got {label!r}.")
        if label.startswith("_"):
            continue
        if isinstance(description, dict):
            description = description.get("description", label)
        if description is None:
            description = label
        if not isinstance(description, str):
            raise ValueError(f"The description of {label!r} must be a string, got "
                             f"{description!r}.")
        kept.append((label, description))
    if not kept:
        raise ValueError(
            f"No usable entity label in {labels!r}: give a list of names or a dict of "
            f"name -> description; names starting with '_' are ignored.")
    return {label: description or label for label, description in kept}


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

    @property
    def joint(self) -> bool:
        """One question per text, answered with every type's entities, each under its name."""
        return "{label}" in self.open


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
    # joint templates: (name as shown, start, end) of each type listed in the prefix
    names: Tuple[Tuple[str, int, int], ...] = ()


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
        self.prefix_ids, self.prefix_names = self.prefix_layout(labels.items())
        self.labels = tuple(labels)
        self.close_ids = self.encode(template.close)
        self._questions: Dict[Tuple[str, str], Question] = {}
        self._opens: Dict[str, Tuple[int, ...]] = {}
        if template.joint:
            if "{types}" not in template.prefix:
                raise ValueError(f"Template {template.name!r} answers every type at once, so "
                                 f"its prefix must list them ({{types}}).")
            self.open_ids = ()
            self.questions = {ALL_TYPES: Question(self.encode(template.question), 0, 0)}
            opens = [self.open_for(label) for label in labels]
        else:
            self.open_ids = self.encode(template.open)
            self.questions = {label: self.question(label, d) for label, d in labels.items()}
            opens = [self.open_ids]
        if not all(opens) or not self.close_ids:
            raise ValueError(f"Template {template.name!r} has an empty delimiter.")

    def keys(self, labels: Sequence[str]) -> Tuple[str, ...]:
        """The row keys that ask about `labels`: the labels themselves, one row each, or the
        one joint question (ALL_TYPES) of a joint template; none without labels."""
        if not labels:
            return ()
        return (ALL_TYPES,) if self.template.joint else tuple(labels)

    def open_for(self, name: str) -> Tuple[int, ...]:
        """The ids that open an entity written under the type name `name` (joint templates);
        the same for every type otherwise."""
        if not self.template.joint:
            return self.open_ids
        if name not in self._opens:
            self._opens[name] = self.encode(self.template.open.format(label=name))
        return self._opens[name]

    def openings(self, key: str) -> Dict[str, Tuple[int, ...]]:
        """label -> the ids that open one of its entities, for the labels a row of `key` may
        write: every label for the joint question, else the row's own label."""
        if key == ALL_TYPES and self.template.joint:
            return {label: self.open_for(label) for label in self.labels}
        return {key: self.open_ids}

    def encode(self, text: str) -> Tuple[int, ...]:
        if not text:
            return ()
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prefix_for(self, types: Iterable[Tuple[str, str]]) -> Tuple[int, ...]:
        """The prefix's ids, listing the (name, description) types where the template has
        {types}; the component's prefix lists its labels, a training row's the types asked."""
        if self._fixed_prefix is not None:
            return self._fixed_prefix
        return self.prefix_layout(types)[0]

    def prefix_layout(
        self, types: Iterable[Tuple[str, str]]
    ) -> Tuple[Tuple[int, ...], Tuple[Tuple[str, int, int], ...]]:
        """The prefix's ids and, where it lists types, each listed name's (name, start, end)
        token positions (the tokens that overlap the name's characters)."""
        if self._fixed_prefix is not None:
            return self._fixed_prefix, ()
        head, tail = self.template.prefix.split("{types}", 1)
        before, _ = self.template.type_line.split("{label}", 1)
        text, spans = head, []
        for name, description in types:
            line = self.template.type_line.format(label=name, description=description or name)
            start = len(text) + len(before)
            spans.append((name, start, start + len(name)))
            text += line
        text += tail
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        names = []
        for name, lo, hi in spans:
            at = [i for i, (a, b) in enumerate(offsets) if a < hi and b > lo]
            names.append((name, at[0], at[-1] + 1))
        return tuple(enc["input_ids"]), tuple(names)

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
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and backend.truncation is None and backend.padding is None:
            # A fast tokenizer: its Rust encoder gives the same ids without the Python
            # wrapping of every encoding (most of the time of a document's span index).
            return [tuple(e.ids) for e in backend.encode_batch(filled, add_special_tokens=False)]
        return [tuple(ids) for ids in self.tokenizer(filled, add_special_tokens=False)["input_ids"]]

    def prompt_ids(self, text: EncodedText, label: str) -> Tuple[int, ...]:
        return self.prefix_ids + text.ids + self.questions[label].ids

    def layout(self, text: EncodedText, label: str) -> Layout:
        """The positions, in prompt_ids(text, label), of the text's tokens and the type name."""
        names = self.prefix_names if self.template.joint else ()
        return self.compose(self.prefix_ids, text, self.questions[label], names)[1]

    def compose(
        self, prefix: Tuple[int, ...], text: EncodedText, question: Question,
        names: Tuple[Tuple[str, int, int], ...] = (),
    ) -> Tuple[Tuple[int, ...], Layout]:
        """A prompt's ids (prefix, text, question) and where its text and type name sit
        (`names`: where the prefix lists the types, from prefix_layout)."""
        text_at = len(prefix)
        question_at = text_at + len(text.ids)
        return prefix + text.ids + question.ids, Layout(
            text_at + text.text_start,
            text_at + text.text_end,
            question_at + question.name_start,
            question_at + question.name_end,
            names,
        )

    def response_ids(self, spans: Sequence[Tuple[int, ...]],
                     names: Optional[Sequence[str]] = None) -> Tuple[int, ...]:
        """The answer: each span opened (under its type's name, `names`, for a joint
        template) and closed, then the end token."""
        if self.template.joint and (names is None or len(names) != len(spans)):
            raise ValueError("A joint template's answer needs the type name of every span.")
        ids: Tuple[int, ...] = ()
        for i, span in enumerate(spans):
            opened = self.open_for(names[i]) if self.template.joint else self.open_ids
            ids += opened + tuple(span) + self.close_ids
        return ids + (self.eos_id,)
