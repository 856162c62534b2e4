"""The `cllmfs_ner` pipe: a LLaMA-family LLM with a LoRA adapter writes `doc.ents`.

For each document and entity type, the model answers the type's question with a list of
entities, decoded under a constraint that only allows spans of the document. This file is
spaCy's component API; the work is done by the modules it calls: the model's lifecycle
(language_model.py), prompts (prompts.py), windows (windows.py), decoding (decoders.py,
constraint.py), training rows (rows.py) and the loss (loss.py).
"""
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.util import minibatch, raise_error
from spacy.vocab import Vocab
from thinc.api import Config, Model

from . import adapter, annotations, windows
from .constraint import Entity, build_span_indexes
from .decoders import Decoder, DecoderSettings
from .errors import AdapterError
from .language_model import LanguageModel, causal_lm_lora
from .loss import CLLMFSLoss
from .prompts import Labels, Prompter, Template, label_dict
from .rows import TYPES_KEY, RowSettings, build_rows

# The registered functions' signatures hold the defaults of their blocks.
DEFAULT_CONFIG_STR = """
[cllmfs_ner]
labels = []
template = "ner.v1"
overwrite_ents = false
scorer = {"@scorers":"spacy.ner_scorer.v1"}

[cllmfs_ner.model]
@architectures = "spacy_cllmfs.CausalLMLoRA.v1"

[cllmfs_ner.model.base_model]
@misc = "spacy_cllmfs.SmolLM2.v1"

[cllmfs_ner.model.lora]
@misc = "spacy_cllmfs.LoRA.v1"

[cllmfs_ner.decoding]
@misc = "spacy_cllmfs.Decoding.v2"

[cllmfs_ner.loss]
@losses = "spacy_cllmfs.CLLMFSLoss.v2"

[cllmfs_ner.rows]
@misc = "spacy_cllmfs.Rows.v1"
"""
DEFAULT_CONFIG = Config().from_str(DEFAULT_CONFIG_STR)

logger = logging.getLogger("spacy_cllmfs")

# nlp.pipe(n_process=N) forks workers. A forked child that inherits torch's OpenMP thread pool
# can hang on its first parallel op; one intra-op thread per worker avoids that (PyTorch's
# DataLoader workers do the same), and N workers use the cores instead.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


@Language.factory(
    "cllmfs_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config=DEFAULT_CONFIG["cllmfs_ner"],
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_cllmfs_ner(
    nlp: Language, name: str, model: Model, labels: Labels, template: str,
    decoding: DecoderSettings, loss: CLLMFSLoss, rows: RowSettings, overwrite_ents: bool,
    scorer: Optional[Callable],
) -> "CLLMFSNer":
    return CLLMFSNer(
        nlp.vocab, model, name, labels=labels, template=template, decoding=decoding, loss=loss,
        rows=rows, overwrite_ents=overwrite_ents, scorer=scorer,
    )


def _unpickle(vocab, name, model_spec, settings, data) -> "CLLMFSNer":
    return CLLMFSNer(vocab, causal_lm_lora(*model_spec), name, **settings).from_bytes(data)


class CLLMFSNer(TrainablePipe):
    """Few-shot NER with a LoRA-adapted causal LM and constrained decoding. How predictions
    meet entities already in `doc.ents` (`overwrite_ents`): annotations.py."""

    def __init__(self, vocab: Vocab, model: Model, name: str = "cllmfs_ner", *,
                 labels: Optional[Labels], template: str, decoding: DecoderSettings,
                 loss: CLLMFSLoss, rows: RowSettings = RowSettings(), overwrite_ents: bool,
                 scorer: Optional[Callable]):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.template = Template.load(template)
        self._decoding = decoding
        self.loss = loss
        self.rows = rows
        self.overwrite_ents = overwrite_ents
        self.scorer = scorer
        self.cfg = {"labels": label_dict(labels)}  # the one owner of the labels
        self._prompter: Optional[Prompter] = None  # built from the labels and the tokenizer
        self._decoder: Optional[Decoder] = None
        self._prefix_generation = -1  # LanguageModel.generation the decoder's prefix is from
        # one entry per update: loss, cross-entropy, InfoNCE, answer rates, rows, passes
        self.update_log: List[Dict[str, float]] = []

    @property
    def language_model(self) -> LanguageModel:
        return self.model.attrs["language_model"]

    @property
    def decoding(self) -> DecoderSettings:
        return self._decoding

    @decoding.setter
    def decoding(self, settings: DecoderSettings) -> None:
        self._decoding, self._decoder = settings, None

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def answered_labels(self) -> Tuple[str, ...]:
        """The labels predict() asks about: all but those left to another component
        (leave_labels)."""
        left = set(self.cfg.get("left", ()))
        return tuple(label for label in self.cfg["labels"] if label not in left)

    def leave_labels(self, labels: Iterable[str]) -> None:
        """Stop answering `labels` (some of this component's): another component answers them,
        as in the recipe's per-type fallback to the starting adapter (fallback.py). With a
        per-type template (ner.v1, ner.v2) their questions are no longer asked and the other
        types' answers do not change; with a joint one (ner.v3) their entities are dropped from
        the one answer. Saved with the component; an empty list answers every label again."""
        labels = list(dict.fromkeys(labels))
        unknown = [label for label in labels if label not in self.cfg["labels"]]
        if unknown:
            raise ValueError(f"{self.name}: cannot leave {unknown}, which are not among its "
                             f"labels {list(self.cfg['labels'])}.")
        if labels and len(labels) == len(self.cfg["labels"]):
            raise ValueError(f"{self.name}: leaving every label would leave it nothing to "
                             f"answer; remove the component from the pipeline instead.")
        if labels:
            self.cfg["left"] = labels
        else:
            self.cfg.pop("left", None)

    @property
    def prompter(self) -> Prompter:
        """The prompts and tokenizer for the current labels (loads the model on first use):
        `prompter.encode_text(text)` gives a text's model tokens, `prompter.pad_id` the pad."""
        return self._ready()[0]

    @property
    def decode_stats(self):
        """The decoder's running counts (rows, positions, forward passes, answers cut off at
        max_new_tokens) for benchmarks, or None for a decoder that keeps none."""
        return getattr(self._ready()[1], "stats", None)

    @property
    def label_descriptions(self) -> Dict[str, str]:
        return dict(self.cfg["labels"])

    label_data = label_descriptions  # what `spacy init labels` writes for initialize

    def add_label(self, label: str, description: Optional[str] = None) -> int:
        if label in self.cfg["labels"]:
            return 0
        if self.language_model.loaded:
            raise ValueError(
                f"Cannot add label {label!r} after the model is loaded: add it to the "
                f"component's `labels` and initialize (train) again."
            )
        self._set_labels({**self.cfg["labels"], label: description or label})
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
            except Exception:
                if error_handler is raise_error:
                    raise
                for doc in docs:
                    try:
                        self.set_annotations([doc], self.predict([doc]))
                    except Exception as doc_error:
                        error_handler(self.name, self, [doc], doc_error)
            yield from docs

    def predict(self, docs: Iterable[Doc]) -> List[List[Entity]]:
        docs = list(docs)
        if not docs:
            return []
        prompter, decoder = self._ready()
        settings = self.decoding
        if settings.merge_adapter:
            self.language_model.merge()
        if self._prefix_generation != self.language_model.generation:
            decoder.forget_prefix()  # computed from weights that have changed since
            self._prefix_generation = self.language_model.generation
        units = windows.units(docs, prompter, self.language_model.context, settings)
        indexes = build_span_indexes([u.part for u in units], prompter, settings.max_span_tokens)
        stats = getattr(decoder, "stats", None)  # the cached decoder counts cut answers
        cut_before = stats.cut_off if stats is not None else 0
        answered = self.answered_labels
        found = decoder.decode([u.encoded for u in units], indexes, answered)
        if len(answered) < len(self.labels):  # a joint template answers every type at once
            found = [[e for e in ents if e.label in answered] for ents in found]
        cut = stats.cut_off - cut_before if stats is not None else 0
        if cut:
            logger.warning(
                "%s: %d of the batch's answers reached decoding.max_new_tokens (%d) before "
                "closing; the entity each was writing is not set. Lower "
                "decoding.window_tokens (%d) or raise max_new_tokens.",
                self.name, cut, settings.max_new_tokens, settings.window_tokens,
            )
        merged = windows.merge(units, found, len(docs))
        if settings.threshold > 0:
            merged = [[e for e in ents if e.score >= settings.threshold] for ents in merged]
        return merged

    def set_annotations(self, docs: Iterable[Doc], predictions: List[List[Entity]]) -> None:
        for doc, prediction in zip(docs, predictions):
            annotations.write(doc, prediction, overwrite=self.overwrite_ents)

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Learn from a batch with the configured loss (cross-entropy + weight x InfoNCE).
        Only the LoRA weights have gradients; the base model is frozen by peft.

        The batch runs in passes of at most rows.pass_tokens padded positions, each text read
        once for all its types (passes.py); their gradients add up to the batch's. Each
        update's loss, its parts and the answer rates go to `self.update_log`."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "CLLMFSNer.update")
        if not examples:
            return losses
        rows = self.training_rows(examples)
        if not rows:
            return losses
        self.language_model.unmerge()  # the adapter's own weights get the gradients
        lm = self.language_model.lm
        params = [p for p in lm.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) for p in params]
        total, counts = 0.0, []
        lm.train()
        try:
            for loss, part in self.loss.passes(lm, rows, self._prompter.pad_id, training=True,
                                               max_tokens=self.rows.pass_tokens):
                if not torch.isfinite(loss):
                    # One bad batch must not write NaN into the adapter: no gradient, no step.
                    warnings.warn(
                        f"{self.name}: the loss of a batch of {len(examples)} examples is "
                        f"{float(loss)}; the batch is skipped. If this repeats, lower the "
                        f"learning rate or check the data.",
                        RuntimeWarning,
                    )
                    return losses
                for grad, g in zip(grads, torch.autograd.grad(loss, params, allow_unused=True)):
                    if g is not None:
                        grad += g
                total += float(loss.detach())
                counts.append(part)
        finally:
            lm.eval()
        for p, grad in zip(params, grads):
            p.grad = grad if p.grad is None else p.grad + grad
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += total
        self.update_log.append({"loss": total, **self.loss.summary(counts, rows)})
        return losses

    def finish_update(self, sgd) -> None:
        lm = self.language_model
        lm.unmerge()  # before the step: unmerging subtracts the weights that were merged
        super().finish_update(sgd)
        lm.changed()

    def use_params(self, params: dict):
        """A generator, as spaCy's own pipes have it: Language.use_params drives it with
        next() (it is not a context manager)."""
        lm = self.language_model
        lm.unmerge()
        try:
            with self.model.use_params(params):
                lm.changed()
                try:
                    yield
                finally:
                    lm.unmerge()  # before the old weights come back
        finally:
            lm.changed()

    def get_loss(self, examples: Iterable[Example], scores=None) -> Tuple[float, Dict]:
        """The training objective on examples, without updating: (loss, its parts)."""
        rows = self.training_rows(examples)
        with torch.no_grad():
            loss, parts = self.loss(self.language_model.lm, rows, self._prompter.pad_id,
                                    training=False, max_tokens=self.rows.pass_tokens)
        return float(loss), parts

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, labels: Optional[Labels] = None) -> None:
        """Set the labels and put the starting adapter on the base model: the shipped general
        adapter where it fits, else a fresh one (model.start; see shipped.py).

        Labels come from `labels` (e.g. [initialize.components.cllmfs_ner.labels]), else
        from the component's config, else from the entities of the examples.
        """
        examples = None if get_examples is None else list(get_examples())
        if labels:
            self._set_labels(label_dict(labels))
        elif not self.cfg["labels"] and examples is not None:
            if not examples:
                raise ValueError(
                    f"The training set given to {self.name!r} is empty, so it has no labels "
                    f"to learn. Check the training corpus (e.g. paths.train), or set the "
                    f"labels in the component's config."
                )
            self._set_labels(label_dict(sorted(
                {e.label_ for eg in examples for e in eg.reference.ents}
            )))
        self._require_labels()
        if examples is not None:
            self._warn_unknown_labels(examples)
        self.language_model.attach_initial(self.template.name)

    # -- serialization ----------------------------------------------------------------------

    def to_disk(self, path, *, exclude: Iterable[str] = tuple()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        if self.language_model.loaded:
            self.language_model.save_adapter(path / "adapter")
        else:
            shutil.rmtree(path / "adapter", ignore_errors=True)

    def from_disk(self, path, *, exclude: Iterable[str] = tuple()) -> "CLLMFSNer":
        path = Path(path)
        cfg = srsly.read_json(path / "cfg")
        saved = cfg.get("labels", {})
        if self.cfg["labels"] and list(self.cfg["labels"]) != list(saved):
            raise AdapterError(
                f"The saved component at {path} was trained for the labels {list(saved)}, "
                f"but its config lists {list(self.cfg['labels'])}. Use the saved labels or "
                f"train again with the new ones."
            )
        self._set_labels(saved)
        self.leave_labels(cfg.get("left", []))
        folder = adapter.saved_folder(path / "adapter")
        if folder is not None:
            self.language_model.load_adapter(folder)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return adapter.folder_to_bytes(self.to_disk)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "CLLMFSNer":
        adapter.bytes_to_folder(bytes_data, self.from_disk)
        return self

    def __reduce__(self):
        """Pickle the settings and the adapter (as to_bytes does), never the base weights."""
        lm = self.language_model
        settings = dict(labels=None, template=self.template.name, decoding=self.decoding,
                        loss=self.loss, rows=self.rows, overwrite_ents=self.overwrite_ents,
                        scorer=self.scorer)
        model_spec = (lm.base_model, lm.lora, lm.start)
        return (_unpickle, (self.vocab, self.name, model_spec, settings, self.to_bytes()))

    def training_rows(self, examples: Iterable[Example]):
        """The training rows (token ids, labels, entity positions) of the examples' gold docs,
        as update() builds them."""
        prompter, _ = self._ready()
        return build_rows([eg.reference for eg in examples], prompter, self.cfg["labels"],
                          self.rows)

    # -- internals ------------------------------------------------------------------------------

    def _require_labels(self) -> None:
        if not self.cfg["labels"]:
            raise ValueError(
                f"The component {self.name!r} has no entity labels. Set them in its config, "
                f"e.g. nlp.add_pipe('cllmfs_ner', config={{'labels': ['PERSON', 'ORG']}}), "
                f"or initialize it with examples that have entities."
            )

    def _warn_unknown_labels(self, examples: Iterable[Example]) -> None:
        """Entities whose label is not among the component's are not trained on: say which.
        Sentences that carry their own types (rehearsal: rows.TYPES_KEY) are asked about
        those, so they are not counted."""
        unknown: Dict[str, int] = {}
        for eg in examples:
            if TYPES_KEY in eg.reference.user_data:
                continue
            for ent in eg.reference.ents:
                if ent.label_ not in self.cfg["labels"]:
                    unknown[ent.label_] = unknown.get(ent.label_, 0) + 1
        if unknown:
            found = ", ".join(f"{label!r} ({n})" for label, n in sorted(unknown.items()))
            warnings.warn(
                f"{self.name}: the training data has entities of labels that are not among "
                f"the component's labels {list(self.cfg['labels'])}: {found}. They are "
                f"trained as no entity. Add them to the labels, or fix their spelling.",
                UserWarning,
            )

    def _set_labels(self, labels: Dict[str, str]) -> None:
        self.cfg["labels"] = dict(labels)
        self.cfg.pop("left", None)  # what was left to another component was of other labels
        self._prompter = None

    def _ready(self) -> Tuple[Prompter, Decoder]:
        """The prompter and decoder for the current labels and weights; loads the base model
        and a fresh adapter on first use, if nothing loaded them yet. A new adapter (initialize,
        from_disk) is a new model object, so the decoder built for the old one is replaced."""
        self._require_labels()
        lm = self.language_model
        if not lm.loaded:
            lm.attach_initial(self.template.name)
        if self._prompter is None or self._prompter.tokenizer is not lm.tokenizer:
            self._prompter = Prompter(lm.tokenizer, self.template, self.cfg["labels"])
            self._decoder = None
        if self._decoder is None or self._decoder.lm is not lm.lm:
            self._decoder = self.decoding.build(lm.lm, self._prompter)
        return self._prompter, self._decoder
