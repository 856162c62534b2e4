"""The `cllmfs_ner` pipe: a LLaMA-family LLM with a LoRA adapter writes `doc.ents`.

For each document and entity type, the model answers the type's question with a list of
entities, decoded under a constraint that only allows spans of the document (decoding.py).
"""
import contextlib
import os
import warnings
import shutil
import tempfile
from pathlib import Path
from typing import (
    Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union,
)

import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples
from spacy.util import minibatch, raise_error
from spacy.vocab import Vocab
from thinc.api import Config, Model

from . import adapter
from .contrastive import default_layer, info_nce
from .decoding import SpanConstraint, build_span_index
from .episodes import IGNORE, build_rows, collate
from .errors import AdapterError
from .inference import CachedDecoder, left_pad
from .models import BaseModel
from .prompts import EncodedText, Prompter, Template
from .windows import split, token_counter

DEFAULT_CONFIG_STR = """
[cllmfs_ner]
labels = []
template = "ner.v1"
max_new_tokens = 64
max_span_tokens = 8
generation_batch_size = 48
reuse_cache = true
overwrite_ents = false
contrastive_weight = 0.1
temperature = 0.1
noise = 0.1
contrastive_layer = null
negative_window = 2
scorer = {"@scorers":"spacy.ner_scorer.v1"}

[cllmfs_ner.base_model]
@misc = "spacy_cllmfs.SmolLM2.v1"
dtype = "auto"

[cllmfs_ner.lora]
@misc = "spacy_cllmfs.LoRA.v1"
r = 32
alpha = 16
dropout = 0.05
"""
DEFAULT_CONFIG = Config().from_str(DEFAULT_CONFIG_STR)

Labels = Union[List[str], Dict[str, str]]
Prediction = List[Tuple[int, int, str, float]]  # (start, end, label, score) per entity

# nlp.pipe(n_process=N) forks workers. A forked child that inherits torch's OpenMP thread pool
# can hang on its first parallel op; one intra-op thread per worker avoids that (PyTorch's
# DataLoader workers do the same), and N workers use the cores instead.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

# doc._.cllmfs_scores: [start, end, label, score] per entity this component wrote. A list of
# lists, so that it survives Doc.to_bytes (msgpack), which nlp.pipe(n_process=N) uses.
if not Doc.has_extension("cllmfs_scores"):
    Doc.set_extension("cllmfs_scores", default=None)


def _span_score(span: Span) -> Optional[float]:
    for start, end, label, score in span.doc._.cllmfs_scores or []:
        if (start, end, label) == (span.start, span.end, span.label_):
            return score
    return None


if not Span.has_extension("cllmfs_score"):
    Span.set_extension("cllmfs_score", getter=_span_score)


@Language.factory(
    "cllmfs_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config=DEFAULT_CONFIG["cllmfs_ner"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_cllmfs_ner(
    nlp: Language,
    name: str,
    base_model: BaseModel,
    lora,
    labels: Labels,
    template: str,
    max_new_tokens: int,
    max_span_tokens: int,
    generation_batch_size: int,
    reuse_cache: bool,
    overwrite_ents: bool,
    contrastive_weight: float,
    temperature: float,
    noise: float,
    contrastive_layer: Optional[int],
    negative_window: int,
    scorer: Optional[Callable],
) -> "CLLMFSNer":
    return CLLMFSNer(
        nlp.vocab,
        name=name,
        base_model=base_model,
        lora=lora,
        labels=labels,
        template=template,
        max_new_tokens=max_new_tokens,
        max_span_tokens=max_span_tokens,
        generation_batch_size=generation_batch_size,
        reuse_cache=reuse_cache,
        overwrite_ents=overwrite_ents,
        contrastive_weight=contrastive_weight,
        temperature=temperature,
        noise=noise,
        contrastive_layer=contrastive_layer,
        negative_window=negative_window,
        scorer=scorer,
    )


def _label_dict(labels: Optional[Labels]) -> Dict[str, str]:
    if not labels:
        return {}
    if isinstance(labels, dict):
        pairs = list(labels.items())
    else:
        pairs = [(label, label) for label in labels]
    for label, description in pairs:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"Entity labels must be non-empty strings, got {label!r}.")
        if not isinstance(description, str):
            raise ValueError(f"The description of {label!r} must be a string.")
    return {label: description or label for label, description in pairs}


class _Unit(NamedTuple):
    """A document, or a window of one, and its encoded text."""

    doc_index: int
    offset: int  # of the window's first token in the document
    part: Union[Doc, Span]
    encoded: EncodedText
    cut_left: bool
    cut_right: bool


_SETTINGS = (
    "base_model", "lora", "labels", "template", "max_new_tokens", "max_span_tokens",
    "generation_batch_size", "reuse_cache", "overwrite_ents", "contrastive_weight",
    "temperature", "noise", "contrastive_layer", "negative_window", "scorer",
)


def _unpickle(vocab, name, settings, data) -> "CLLMFSNer":
    return CLLMFSNer(vocab, name, **settings).from_bytes(data)


def _prob(logp: float) -> float:
    return float(torch.tensor(logp).exp())


def _no_forward(model, docs, is_train):
    raise NotImplementedError("cllmfs_ner runs its torch model directly; see CLLMFSNer.predict.")


class CLLMFSNer(TrainablePipe):
    """Few-shot NER with a LoRA-adapted causal LM and constrained decoding.

    Entities already in `doc.ents` are kept and new entities that overlap them are dropped;
    with `overwrite_ents`, new entities replace the existing ones they overlap.
    Overlapping predictions, within or across types, are resolved greedily: higher score
    first, then the longer span, then the earlier one.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "cllmfs_ner",
        *,
        base_model: BaseModel,
        lora,
        labels: Optional[Labels] = None,
        template: str = "ner.v1",
        max_new_tokens: int = 64,
        max_span_tokens: int = 8,
        generation_batch_size: int = 48,
        reuse_cache: bool = True,
        overwrite_ents: bool = False,
        contrastive_weight: float = 0.1,
        temperature: float = 0.1,
        noise: float = 0.1,
        contrastive_layer: Optional[int] = None,
        negative_window: int = 2,
        scorer: Optional[Callable] = None,
    ):
        for key, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_span_tokens", max_span_tokens),
            ("generation_batch_size", generation_batch_size),
            ("negative_window", negative_window),
        ):
            if value < 1:
                raise ValueError(f"{key} must be at least 1, got {value}.")
        if temperature <= 0:
            raise ValueError(f"temperature must be greater than 0, got {temperature}.")
        if noise < 0:
            raise ValueError(f"noise (the Gaussian noise's scale) must be >= 0, got {noise}.")
        if contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {contrastive_weight}.")
        if contrastive_layer is not None and contrastive_layer < 1:
            raise ValueError(f"contrastive_layer must be at least 1, got {contrastive_layer}.")
        self.vocab = vocab
        self.name = name
        self.base_model = base_model
        self.lora = lora
        self.template = Template.load(template)
        self.max_new_tokens = max_new_tokens
        self.max_span_tokens = max_span_tokens
        self.generation_batch_size = generation_batch_size
        self.reuse_cache = reuse_cache
        self.overwrite_ents = overwrite_ents
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.noise = noise
        self.contrastive_layer = contrastive_layer
        self.negative_window = negative_window
        self.scorer = scorer
        self.cfg = {"labels": _label_dict(labels)}
        # spaCy's trainer talks to self.model; the torch model joins it as a shim once loaded.
        self.model = Model("cllmfs_lora", _no_forward)
        self._lm = None
        self._tokenizer = None
        self._prompter: Optional[Prompter] = None
        self._decoder: Optional[CachedDecoder] = None
        self._base_identity: Optional[dict] = None

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_descriptions(self) -> Dict[str, str]:
        return dict(self.cfg["labels"])

    @property
    def label_data(self) -> Dict[str, str]:
        """Labels and descriptions, as `spacy init labels` writes them for initialize."""
        return self.label_descriptions

    def add_label(self, label: str, description: Optional[str] = None) -> int:
        if label in self.cfg["labels"]:
            return 0
        if self._lm is not None:
            raise ValueError(
                f"Cannot add label {label!r} after the model is loaded: add it to the "
                f"component's `labels` and initialize (train) again."
            )
        self.cfg["labels"].update(_label_dict({label: description or label}))
        return 1

    # -- spaCy's pipe API, in spaCy's order ------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc], batch_size=1))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate a stream of docs; yields every doc, in order, exactly once.

        When a batch fails, the error handler (`nlp.set_error_handler`) hears of it. The
        default one raises. If it lets processing go on, the batch is retried one doc at a
        time, the handler hears of each doc that still fails, and those docs are yielded
        without new entities; no doc is dropped.
        """
        error_handler = self.get_error_handler()
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
            except Exception as error:
                if error_handler is raise_error:
                    raise
                for doc in docs:
                    try:
                        self.set_annotations([doc], self.predict([doc]))
                    except Exception as doc_error:
                        error_handler(self.name, self, [doc], doc_error)
            yield from docs

    def predict(self, docs: Iterable[Doc]) -> List[Prediction]:
        docs = list(docs)
        if not docs:
            return []
        self._require_labels()
        self._ensure_model()
        units = self._windows(docs)
        texts = [unit.encoded for unit in units]
        indexes = [build_span_index(u.part, self._prompter, self.max_span_tokens) for u in units]
        best: List[Dict[Tuple[int, int, str], float]] = [{} for _ in docs]
        for unit, entities in zip(units, self._decode(texts, indexes)):
            for start, end, label, score in entities:
                if (unit.cut_left and start == 0) or (unit.cut_right and end == len(unit.part)):
                    continue  # maybe a fragment; the next window holds the span whole
                key = (start + unit.offset, end + unit.offset, label)
                found = best[unit.doc_index]
                found[key] = max(score, found.get(key, 0.0))  # in two windows: once
        return [[(*key, score) for key, score in found.items()] for found in best]

    def _decode(self, texts, indexes) -> List[Prediction]:
        """Entities (start, end, label, probability) of every type in every text."""
        found: List[Prediction] = [[] for _ in texts]
        if self.reuse_cache:
            # generation_batch_size counts (text, type) rows, as in the plain path.
            per_batch = max(1, self.generation_batch_size // len(self.labels))
            for start in range(0, len(texts), per_batch):
                end = start + per_batch
                chunk = self._decoder.decode(texts[start:end], indexes[start:end], self.labels)
                for i, entities in enumerate(chunk, start):
                    found[i] = [(s, e, label, _prob(logp)) for label, s, e, logp in entities]
            return found
        prompter = self._prompter
        rows = [(i, label) for i in range(len(texts)) for label in self.labels]
        for chunk in minibatch(rows, self.generation_batch_size):
            prompts = [prompter.prompt_ids(texts[i], label) for i, label in chunk]
            constraint = SpanConstraint([indexes[i] for i, _ in chunk], prompter)
            self._generate(prompts, constraint)
            for row, (i, label) in enumerate(chunk):
                for start, end, logp in constraint.entities(row):
                    found[i].append((start, end, label, _prob(logp)))
        return found

    def _windows(self, docs: Sequence[Doc]) -> List[_Unit]:
        """The pieces of the docs that fit the model's context (windows.py)."""
        budget = self._text_budget()
        units = []
        for i, doc in enumerate(docs):
            encoded = self._prompter.encode_text(doc.text)
            if budget is None or encoded.text_end - encoded.text_start <= budget:
                units.append(_Unit(i, 0, doc, encoded, False, False))
                continue
            count = token_counter(encoded.offsets)
            overlap = self.max_span_tokens + 1
            for start, end, cut_left, cut_right in split(doc, budget, count, overlap):
                part = doc[start:end]
                encoded = self._prompter.encode_text(part.text)
                units.append(_Unit(i, start, part, encoded, cut_left, cut_right))
        return units

    def _text_budget(self) -> Optional[int]:
        """How many model tokens of text a prompt can hold, from the model's context size."""
        context = getattr(self._lm.get_base_model().config, "max_position_embeddings", None)
        if not context:
            return None
        prompter = self._prompter
        around = (
            len(prompter.prefix_ids)
            + len(prompter.encode_text("").ids)
            + max(len(q.ids) for q in prompter.questions.values())
            + self.max_new_tokens
            + 4  # a window re-tokenized on its own may take a token or two more
        )
        if context - around < 4 * self.max_span_tokens:
            raise ValueError(
                f"The model's context ({context} tokens) leaves {context - around} tokens for "
                f"the text once the instruction, the longest type question and "
                f"max_new_tokens ({self.max_new_tokens}) are counted: lower max_new_tokens or "
                f"shorten the label descriptions."
            )
        return context - around

    def set_annotations(self, docs: Iterable[Doc], predictions: List[Prediction]) -> None:
        for doc, prediction in zip(docs, predictions):
            ranked = sorted(prediction, key=lambda p: (-p[3], -(p[1] - p[0]), p[0]))
            taken = [False] * len(doc)
            new: List[Span] = []
            scores = {}
            for start, end, label, score in ranked:
                if any(taken[start:end]):
                    continue
                taken[start:end] = [True] * (end - start)
                new.append(Span(doc, start, end, label=label))
                scores[(start, end, label)] = score
            existing = list(doc.ents)
            if self.overwrite_ents:
                kept = [e for e in existing if not any(taken[e.start : e.end])]
                ents = kept + new
            else:
                ents = existing + [
                    s for s in new if not any(e.start < s.end and s.start < e.end for e in existing)
                ]
            doc.ents = sorted(ents, key=lambda s: s.start)
            final = {(s.start, s.end, s.label_) for s in doc.ents}
            previous = {(s, e, label): v for s, e, label, v in doc._.cllmfs_scores or []}
            doc._.cllmfs_scores = [
                [*key, value] for key, value in {**previous, **scores}.items() if key in final
            ]

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch: cross-entropy on the response tokens plus
        contrastive_weight x InfoNCE on the hidden states of `contrastive_layer`.
        Only the LoRA weights have gradients; the base model is frozen by peft.
        """
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "CLLMFSNer.update")
        if not examples:
            return losses
        rows, batch = self._training_batch(examples)
        self._lm.train()
        try:
            loss, _ = self._loss(rows, batch, training=True)
            if not torch.isfinite(loss):
                # One bad batch must not write NaN into the adapter: no gradient, no step.
                warnings.warn(
                    f"{self.name}: the loss of a batch of {len(examples)} examples is "
                    f"{float(loss)}; the batch is skipped. If this repeats, lower the "
                    f"learning rate or check the data.",
                    RuntimeWarning,
                )
                return losses
            loss.backward()
        finally:
            self._lm.eval()
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += float(loss.detach())
        return losses

    def finish_update(self, sgd) -> None:
        super().finish_update(sgd)
        self._forget_prefix()  # the cached prefix came from the old weights

    @contextlib.contextmanager
    def use_params(self, params: dict):
        self._forget_prefix()
        try:
            with self.model.use_params(params):
                yield
        finally:
            self._forget_prefix()

    def get_loss(self, examples: Iterable[Example], scores=None) -> Tuple[float, Dict]:
        """The training objective on examples, without updating: (loss, its parts)."""
        rows, batch = self._training_batch(examples)
        with torch.no_grad():
            loss, parts = self._loss(rows, batch, training=False)
        return float(loss), parts

    def _training_batch(self, examples: Iterable[Example]):
        """The rows of the gold docs and their collated tensors on the model's device."""
        self._require_labels()
        self._ensure_model()
        rows = build_rows([eg.reference for eg in examples], self._prompter)
        return rows, collate(rows, self._prompter.pad_id, self._lm.device)

    def _loss(self, rows, batch, *, training: bool):
        want_hidden = self.contrastive_weight > 0
        captured: List[torch.Tensor] = []
        hook = None
        if want_hidden:
            # Keep only layer l's output, instead of asking transformers for every layer's.
            block = self._lm.get_base_model().model.layers[self._layer() - 1]
            hook = block.register_forward_hook(
                lambda module, args, out: captured.append(out[0] if isinstance(out, tuple) else out)
            )
        # Position p predicts token p + 1; only response tokens have targets, so the LM head
        # runs only at the positions before one (in any row), not over the whole prompt.
        targets = batch["labels"][:, 1:]
        keep = (targets != IGNORE).any(dim=0).nonzero()[:, 0]
        try:
            output = self._lm(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                logits_to_keep=keep,
            )
        finally:
            if hook is not None:
                hook.remove()
        loss = torch.nn.functional.cross_entropy(
            output.logits.flatten(0, 1).float(),
            targets[:, keep].flatten(),
            ignore_index=IGNORE,
        )
        parts = {"cross_entropy": float(loss.detach())}
        if want_hidden:
            nce = info_nce(
                captured[-1],
                rows,
                temperature=self.temperature,
                noise=self.noise,
                window=self.negative_window,
                training=training,
            )
            if nce is not None:
                parts["info_nce"] = float(nce.detach())
                loss = loss + self.contrastive_weight * nce
        return loss, parts

    def _layer(self) -> int:
        depth = self._lm.get_base_model().config.num_hidden_layers
        layer = self.contrastive_layer or default_layer(depth)
        if layer > depth:
            raise ValueError(
                f"contrastive_layer is {layer}, but the base model has {depth} layers: "
                f"choose a layer from 1 to {depth} (default: {default_layer(depth)})."
            )
        return layer

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Labels] = None,
    ) -> None:
        """Set the labels and attach a fresh LoRA adapter to the base model.

        Labels come from `labels` (e.g. [initialize.components.cllmfs_ner.labels]), else
        from the component's config, else from the entities of the examples.
        """
        if labels:
            self.cfg["labels"] = _label_dict(labels)
        elif not self.cfg["labels"] and get_examples is not None:
            examples = list(get_examples())
            if not examples:
                raise ValueError(
                    f"The training set given to {self.name!r} is empty, so it has no labels "
                    f"to learn. Check the training corpus (e.g. paths.train), or set the "
                    f"labels in the component's config."
                )
            found = sorted({e.label_ for eg in examples for e in eg.reference.ents})
            self.cfg["labels"] = _label_dict(found)
        self._require_labels()
        base = self._release_base()
        if base is None:
            base, tokenizer = self.base_model.load()
        else:
            tokenizer = self._tokenizer
        self._set_lm(adapter.attach(base, self.lora), tokenizer)

    # -- serialization ----------------------------------------------------------------------

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        if self._lm is None:
            shutil.rmtree(path / "adapter", ignore_errors=True)
            return
        # Write the new adapter beside the old one, then swap: a save that is interrupted
        # (e.g. spacy train stopped while writing model-last) leaves the old adapter whole.
        fresh = Path(tempfile.mkdtemp(prefix=".adapter-", dir=path))
        try:
            adapter.save(self._lm, fresh, self._base_identity)
            old = path / ".adapter-old"
            shutil.rmtree(old, ignore_errors=True)
            if (path / "adapter").exists():
                os.replace(path / "adapter", old)
            os.replace(fresh, path / "adapter")
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "CLLMFSNer":
        path = Path(path)
        cfg = srsly.read_json(path / "cfg")
        saved_labels = cfg.get("labels", {})
        if self.cfg["labels"] and list(self.cfg["labels"]) != list(saved_labels):
            raise AdapterError(
                f"The saved component at {path} was trained for the labels "
                f"{list(saved_labels)}, but its config lists {list(self.cfg['labels'])}. "
                f"Use the saved labels or train again with the new ones."
            )
        self.cfg = {**self.cfg, **cfg, "labels": saved_labels}
        folder = path / "adapter"
        if not folder.exists() and (path / ".adapter-old").exists():
            folder = path / ".adapter-old"  # a save stopped between its two renames
        if folder.exists():
            base = self._release_base()
            if base is None:
                base, self._tokenizer = self.base_model.load()
            base_identity = adapter.identity(base, self.base_model.name)
            lm = adapter.load(base, folder, base_identity)
            self._set_lm(lm, self._tokenizer)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {
                str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
            }
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "CLLMFSNer":
        files = srsly.msgpack_loads(bytes_data)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp)
        return self

    def __reduce__(self):
        """Pickle the settings and the adapter (as to_bytes does), never the base weights."""
        settings = {key: getattr(self, key) for key in _SETTINGS}
        settings["template"] = self.template.name
        settings["labels"] = None  # the bytes hold the labels
        return (_unpickle, (self.vocab, self.name, settings, self.to_bytes()))

    # -- internals ------------------------------------------------------------------------------

    def _require_labels(self) -> None:
        if not self.cfg["labels"]:
            raise ValueError(
                f"The component {self.name!r} has no entity labels. Set them in its config, "
                f"e.g. nlp.add_pipe('cllmfs_ner', config={{'labels': ['PERSON', 'ORG']}}), "
                f"or initialize it with examples that have entities."
            )

    def _ensure_model(self) -> None:
        """Load the base model and a fresh adapter on first use, if nothing loaded them yet."""
        if self._lm is None:
            base, tokenizer = self.base_model.load()
            self._set_lm(adapter.attach(base, self.lora), tokenizer)
        elif self._prompter is None or self._prompter.labels != self.cfg["labels"]:
            self._set_prompter()

    def _release_base(self):
        """Take the LoRA layers off the loaded model, to reuse its base weights."""
        if self._lm is None:
            return None
        from thinc.shims import PyTorchShim

        base = self._lm.unload()
        self._lm = None
        self.model._shims = [s for s in self.model.shims if not isinstance(s, PyTorchShim)]
        return base

    def _set_lm(self, lm, tokenizer) -> None:
        from thinc.shims import PyTorchShim

        lm.eval()
        self._lm = lm
        self._tokenizer = tokenizer
        self._base_identity = adapter.identity(lm.get_base_model(), self.base_model.name)
        self._set_prompter()
        self.model._shims = [PyTorchShim(lm)]

    def _forget_prefix(self) -> None:
        if self._decoder is not None:
            self._decoder.forget_prefix()

    def _set_prompter(self) -> None:
        """The prompts for the current labels, and a decoder (with an empty prefix cache)."""
        self._prompter = Prompter(self._tokenizer, self.template, self.cfg["labels"])
        self._decoder = CachedDecoder(self._lm, self._prompter, self.max_new_tokens)

    @torch.inference_mode()
    def _generate(self, prompts: Sequence[Sequence[int]], constraint: SpanConstraint) -> None:
        from transformers import GenerationConfig, LogitsProcessorList

        pad = self._prompter.pad_id
        input_ids, mask = left_pad(prompts, pad, self._lm.device)
        width = input_ids.shape[1]
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self._prompter.eos_id,
            pad_token_id=pad,
        )
        output = self._lm.generate(
            input_ids=input_ids,
            attention_mask=mask,
            generation_config=config,
            logits_processor=LogitsProcessorList([constraint]),
        )
        constraint.finish(output[:, width:])
