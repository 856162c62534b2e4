"""Train an adapter with the component's training rows and loss in a plain torch loop.

`spacy train` (the `source` workflow) is the way to train; this script is for a machine where
spaCy is not installed but torch, transformers and peft are, such as the GPU box that trained
the shipped general-ner.v1. It runs the same code on the same data: `rows.build_rows` (the
docs' own types, sampled absent types, varied names), `collate` and `CLLMFSLoss` (cross-entropy
+ InfoNCE), on the SmolLM2 weights that `loading` de-quantizes, with AdamW, linear warmup and
cosine decay, and a global gradient-norm clip. It differs from `spacy train` in the optimizer
(thinc's Adam clips each tensor) and in having no dev evaluation while it trains.

Two steps:

  # where spaCy is: the training docs as gzipped JSONL (text, entities, the doc's types)
  python scripts/train_rows.py export corpus/source docs.jsonl.gz
  # where the GPU is (spaCy not needed): train, save the adapter in PEFT's format
  python scripts/train_rows.py train docs.jsonl.gz OUT_DIR --gguf SmolLM2-135M-Instruct.Q4_1.gguf \
      --template ner.v2 --epochs 3
"""
import argparse
import gzip
import importlib.util
import json
import math
import random
import sys
import time
import types
from pathlib import Path


def export(corpus_dir: Path, output: Path, split: str = "train") -> None:
    import spacy
    from spacy.tokens import DocBin

    from spacy_cllmfs.rows import TYPES_KEY

    nlp = spacy.blank("en")
    with gzip.open(output, "wt", encoding="utf8") as out:
        for path in sorted(corpus_dir.glob(f"*/{split}.spacy")):
            for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
                record = {"corpus": path.parent.name, "text": doc.text,
                          "ents": [[e.start_char, e.end_char, e.label_] for e in doc.ents],
                          "types": doc.user_data[TYPES_KEY]}
                out.write(json.dumps(record) + "\n")


class _Span:
    def __init__(self, doc, start, end, label):
        self.start_char, self.end_char, self.label_ = start, end, label
        self.text = doc.text[start:end]


class _Doc:
    """What build_rows reads of a spaCy Doc: text, ents and user_data."""

    def __init__(self, record):
        self.text = record["text"]
        self.ents = [_Span(self, *e) for e in record["ents"]]
        self.user_data = {"cllmfs_types": record["types"]}


def _import_package(root: Path):
    """Import the package's torch-only modules without spaCy: a stand-in for spaCy's registry
    (whose decorators only register) and the package without its __init__ (the spaCy pipe)."""
    try:
        import spacy  # noqa: F401
    except ImportError:
        class _Registry:
            def __getattr__(self, name):
                return lambda *args, **kwargs: (lambda func: func)

        util = types.ModuleType("spacy.util")
        util.registry = _Registry()
        spacy_stub = types.ModuleType("spacy")
        spacy_stub.util = util
        sys.modules.update({"spacy": spacy_stub, "spacy.util": util})
    location = str(root / "spacy_cllmfs")
    spec = importlib.util.spec_from_file_location(
        "spacy_cllmfs", f"{location}/__init__.py", submodule_search_locations=[location])
    sys.modules.setdefault("spacy_cllmfs", importlib.util.module_from_spec(spec))  # not run


def prepare(gguf: Path) -> None:
    import torch

    _import_package(Path(__file__).resolve().parents[2])
    from spacy_cllmfs import loading

    loading._load_gguf_cached(gguf, loading.SMOLLM2_NAME, torch.float32)


def train(args) -> None:
    import torch

    _import_package(Path(__file__).resolve().parents[2])
    from spacy_cllmfs import adapter, loading
    from spacy_cllmfs.loss import CLLMFSLoss
    from spacy_cllmfs.prompts import Prompter, Template
    from spacy_cllmfs.rows import RowSettings, build_rows

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gguf = Path(args.gguf)
    base, tokenizer = loading._load_gguf_cached(gguf, loading.SMOLLM2_NAME, torch.float32)
    base.name_or_path = loading.SMOLLM2_NAME
    identity = adapter.identity(base, loading.SMOLLM2_NAME)
    lm = adapter.attach(base.to(device), adapter.lora_config(r=args.r, alpha=args.alpha))
    prompter = Prompter(tokenizer, Template.load(args.template), {})
    settings = RowSettings(absent_types=args.absent_types, vary_names=True)
    loss_fn = CLLMFSLoss(weight=args.weight)
    with gzip.open(args.docs, "rt", encoding="utf8") as lines:
        docs = [_Doc(json.loads(line)) for line in lines]
    if args.limit:
        docs = docs[: args.limit]
    steps_per_epoch = math.ceil(len(docs) / args.batch_docs)
    total = args.max_steps or int(args.epochs * steps_per_epoch)
    budget = {"total": total}  # --seconds shortens the run (and its schedule) after 20 steps
    params = [p for p in lm.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    warmup = max(1, int(0.05 * total))

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, budget["total"] - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "train_log.jsonl").open("w", encoding="utf8")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" \
        else torch.autocast("cpu", enabled=False)
    lm.train()
    started, step, order = time.time(), 0, []
    n_rows = n_answered = 0
    while step < budget["total"]:
        if not order:
            order = list(range(len(docs)))
            rng.shuffle(order)
        batch_docs = [docs[i] for i in order[: args.batch_docs]]
        del order[: args.batch_docs]
        rows = build_rows(batch_docs, prompter, {}, settings, rng)
        with autocast:  # one pass: each text read once for its types (passes.py)
            loss, parts = loss_fn(lm, rows, prompter.pad_id, training=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        n_rows += len(rows)
        n_answered += sum(bool(r.entities) for r in rows)
        if step == 20 and args.seconds:
            per_step = (time.time() - started) / step
            budget["total"] = min(total, max(warmup + 1, int(args.seconds / per_step)))
        if step % args.log_every == 0 or step == budget["total"]:
            record = {"step": step, "loss": float(loss.detach()), **parts,
                      "grad_norm": float(norm), "lr": scheduler.get_last_lr()[0],
                      "rows": n_rows, "answered_share": n_answered / max(1, n_rows),
                      "seconds": round(time.time() - started, 1)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(json.dumps(record), flush=True)
    lm.eval()
    adapter.save(lm, out / "adapter", identity)
    if args.save_dtype != "float32":  # e.g. float16: half the size; loads into float32 LoRA
        from safetensors.torch import load_file, save_file

        weights_path = out / "adapter" / "adapter_model.safetensors"
        weights = load_file(str(weights_path))
        dtype = getattr(torch, args.save_dtype)
        save_file({k: v.to(dtype) for k, v in weights.items()}, str(weights_path),
                  metadata={"format": "pt"})
    summary = {"template": args.template, "docs": len(docs), "steps": step,
               "epochs": round(step * args.batch_docs / len(docs), 2),
               "batch_docs": args.batch_docs, "rows": n_rows, "answered_share":
               n_answered / max(1, n_rows), "seconds": round(time.time() - started, 1),
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "lora": {"r": args.r, "alpha": args.alpha, "dropout": 0.05},
               "loss": {"weight": args.weight}, "lr": args.lr, "absent_types":
               args.absent_types, "seed": args.seed, "base_model": identity}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_export = sub.add_parser("export")
    p_export.add_argument("corpus", type=Path)
    p_export.add_argument("output", type=Path)
    p_train = sub.add_parser("train")
    p_train.add_argument("docs")
    p_train.add_argument("output")
    p_train.add_argument("--gguf", required=True)
    p_train.add_argument("--template", default="ner.v2")
    p_train.add_argument("--epochs", type=float, default=3)
    p_train.add_argument("--max-steps", type=int, default=0)
    p_train.add_argument("--batch-docs", type=int, default=16)
    p_train.add_argument("--lr", type=float, default=3e-4)
    p_train.add_argument("--r", type=int, default=16)
    p_train.add_argument("--alpha", type=int, default=16)
    p_train.add_argument("--weight", type=float, default=0.1)
    p_train.add_argument("--absent-types", type=int, default=2)
    p_train.add_argument("--limit", type=int, default=0)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--log-every", type=int, default=20)
    p_train.add_argument("--save-dtype", default="float32", choices=["float32", "float16"])
    p_train.add_argument("--seconds", type=float, default=0,
                         help="time budget: fewer steps (same schedule shape) if it would run over")
    p_prepare = sub.add_parser("prepare", help="de-quantize the GGUF into the model cache once")
    p_prepare.add_argument("--gguf", required=True)
    args = parser.parse_args()
    if args.command == "export":
        export(args.corpus, args.output)
    elif args.command == "prepare":
        prepare(Path(args.gguf))
    else:
        train(args)
