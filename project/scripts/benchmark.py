"""Speed and memory of `cllmfs_ner` on the default model, every figure taken in one run.

- limit: tokens/s of a plain batched forward pass (no generation) over the documents' tokens;
- pipeline: document tokens/s and documents/s through `nlp.pipe`, with the shipped general
  adapter (the default start) and with a blank adapter, and the positions the decoder read per
  document: text, questions, answers, padding (the share of padded positions in its batches),
  and the answer tokens per (document, type);
- naive: one full prompt per row (per (document, type); per document with a joint template),
  batch size 1, no cache reuse, same constraints (the pipeline is timed on the same documents
  for the ratio, and must predict the same); with a joint template also the issue's naive
  loop, one full prompt per (document, type) with ner.v1 and its shipped adapter;
- spacy-llm in-context learning: spacy-llm's `spacy.NER.v3` with 5 shots per type (sampled
  from the training split, seed 1) on the same base model, timed with the pipeline on the same
  documents;
- peak resident memory of this process after loading the model and running the pipeline with
  the shipped adapter (measured before the other runs, which are not part of processing);
- cold (fresh interpreter) and warm (second) `spacy.load` of a trained pipeline;
- training tokens/s of `update()` (cross-entropy + InfoNCE + optimizer step) against a plain
  forward + backward pass of the same batches.

Texts and types: the WNUT-17 test split and its 6 types, with the project's one-line
descriptions (configs/wnut17_types.json), when DATA_DIR holds it (e.g. ../../shared/data/wnut17),
else the bundled sample's test sets and their 6 types (run the `convert` command first).

On a GPU (--gpu-id 0) every figure is taken on the GPU, in --dtype (auto: bfloat16 on CUDA),
and the peak of GPU memory allocated by torch is reported beside the resident memory.

Usage: python scripts/benchmark.py OUTPUT_JSON [--data DATA_DIR] [--pipeline PATH]
       [--docs 100] [--naive-docs 8] [--icl-docs 16] [--train-steps 8] [--gpu-id -1]
       [--dtype auto] [--decoding JSON] [--template ner.v1] [--start general-ner.v1]
  --template, --start: the component's template and the adapter it starts from (a shipped
  adapter's name or a folder)
  --decoding: settings of the [decoding] block to change in both pipelines (shipped and blank),
  e.g. '{"batch_size": 1536, "cache_mb": 0}' for a GPU's memory
"""
import argparse
import dataclasses
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Adam

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.fewshot import sample_episode
from spacy_cllmfs.rows import collate

from spacy_cllmfs.bridge import in_context_pipeline

TARGETS = {"pipeline_over_limit": 0.3, "pipeline_over_naive": 10.0, "pipeline_over_icl": 5.0,
           "peak_rss_mb": 1536, "load_warm_s": 5.0, "train_over_plain": 0.7}
DESCRIPTIONS = Path(__file__).parent.parent / "configs" / "wnut17_types.json"
ICL_SHOTS = 5
SHIPPED = "general-ner.v1"


def read_conll(path: Path, vocab):
    docs, words, tags = [], [], []
    for line in path.read_text(encoding="utf8").splitlines() + [""]:
        if line.strip():
            word, tag = line.split("\t")[:2] if "\t" in line else line.split()[:2]
            words.append(word)
            tags.append(tag)
        elif words:
            docs.append(Doc(vocab, words=words, ents=tags))
            words, tags = [], []
    return docs


def load_data(data: Path, vocab):
    """(what, test docs, train docs, labels: {type: description} or a list of types)."""
    if data and (data / "test.conll").exists():
        test = read_conll(data / "test.conll", vocab)
        train = read_conll(data / "train.conll", vocab)
        known = {k: v for k, v in json.loads(DESCRIPTIONS.read_text()).items() if k[0] != "_"}
        types = sorted({e.label_ for doc in train + test for e in doc.ents})
        return f"WNUT-17 ({data})", test, train, {t: known[t] for t in types}
    test, train = [], []
    for domain in ("news", "recipes"):
        test += read_docs(Path("corpus") / domain / "test.spacy", vocab)
        train += read_docs(Path("corpus") / domain / "train.spacy", vocab)
    types = sorted({e.label_ for doc in train + test for e in doc.ents})
    return "bundled sample (news + recipes)", test, train, types


def make_nlp(labels, start: str, decoding=None, dtype: str = "auto", template: str = "ner.v1"):
    """A pipeline with cllmfs_ner for `labels`, starting from `start` (model.start), on the
    default model in `dtype`."""
    nlp = spacy.blank("en")
    base_model = {"@misc": "spacy_cllmfs.SmolLM2.v1", "dtype": dtype}
    config = {"labels": labels, "template": template,
              "model": {"start": start, "base_model": base_model}}
    if decoding:
        config["decoding"] = decoding
    nlp.add_pipe("cllmfs_ner", config=config)
    nlp.initialize()
    return nlp


def positions(stats, n_docs: int, n_types: int) -> dict:
    """The decoder's positions per document by part, the padded share, answer tokens per row
    (from the component's decode_stats)."""
    read = stats.text + stats.questions + stats.answers + stats.padding
    per_doc = {part: getattr(stats, part) / n_docs
               for part in ("text", "questions", "answers", "padding")}
    return {
        "positions_per_doc": per_doc,
        "positions_per_doc_total": read / n_docs,
        "padded_share": stats.padding / read,
        "answer_tokens_per_row": stats.answer_tokens / max(1, stats.rows),
        "rows_per_batch": stats.rows / max(1, stats.batches),
        "rows": stats.rows,
        "docs_with_rows": stats.documents,
        "types": n_types,
    }


def run_pipeline(nlp, texts):
    """Seconds for nlp.pipe over the texts and the decoder's positions (warmed up first)."""
    pipe = nlp.get_pipe("cllmfs_ner")
    list(nlp.pipe(texts[:4]))  # warm-up: loads the model, computes the prefix cache
    stats = pipe.decode_stats
    stats.reset()
    seconds, docs = timed(lambda: list(nlp.pipe(texts, batch_size=1000)))
    return seconds, docs, positions(stats, len(texts), len(pipe.labels))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_gpu_allocated_mb(lm):
    """The peak of GPU memory allocated by torch so far, in MiB, where the model is on CUDA;
    None on the CPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if lm.device.type == "cuda" else None


def synchronize(device) -> None:
    """Wait for the GPU's queued work, so that a timer sees it (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def forward_limit(pipe, token_lists, batch_size: int) -> float:
    """Seconds for a plain batched forward pass (right-padded) over the token lists."""
    lm, pad = pipe.language_model.lm, pipe.language_model.tokenizer.pad_token_id

    def run():
        for i in range(0, len(token_lists), batch_size):
            chunk = token_lists[i : i + batch_size]
            width = max(len(t) for t in chunk)
            ids = torch.tensor([list(t) + [pad] * (width - len(t)) for t in chunk])
            mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in chunk])
            lm(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), logits_to_keep=1)
        synchronize(lm.device)

    run()  # warm-up
    return timed(run)[0]


def spans(docs):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]


def load_times(path: Path):
    code = (
        "import time, spacy\n"
        f"t = time.perf_counter(); spacy.load({str(path)!r}); cold = time.perf_counter() - t\n"
        f"t = time.perf_counter(); spacy.load({str(path)!r}); warm = time.perf_counter() - t\n"
        "print(cold, warm)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cold, warm = out.stdout.split()[-2:]
    return float(cold), float(warm)


def training(pipe, examples, steps: int):
    """Tokens/s of update() and of a plain forward+backward pass over the same batches."""
    # The plain pass below drives the model directly, so the adapter must not be merged into the
    # base weights (decoding merges it; update() takes it out again, this pass would not).
    pipe.language_model.unmerge()
    lm = pipe.language_model.lm
    optimizer = Adam(1e-4)
    batches = [examples[2 * i : 2 * i + 2] for i in range(steps + 1)]
    plain_s = train_s = tokens = 0
    for step, batch in enumerate(batches):
        tensors = collate(pipe.training_rows(batch), pipe.prompter.pad_id, lm.device)
        lm.train()

        def plain():
            lm(**tensors).loss.backward()
            lm.zero_grad(set_to_none=True)
            synchronize(lm.device)

        def update():
            pipe.update(batch, sgd=optimizer)
            synchronize(lm.device)

        seconds_plain, _ = timed(plain)
        seconds_train, _ = timed(update)
        if step:  # the first batch warms up
            plain_s += seconds_plain
            train_s += seconds_train
            tokens += int(tensors["attention_mask"].sum())
    lm.eval()
    return tokens / train_s, tokens / plain_s


def icl_docs_per_s(nlp, labels, train, texts):
    """(shot sentences, docs/s of spacy-llm's NER.v3 with ICL_SHOTS shots per type on the
    pipeline's base model, docs/s of the pipeline on the same texts)."""
    base = nlp.config["components"]["cllmfs_ner"]["model"]["base_model"]
    indices = sample_episode(train, len(labels), ICL_SHOTS, seed=1).indices
    icl = in_context_pipeline(base, labels, [train[i] for i in indices], max_new_tokens=96)
    list(icl.pipe(texts[:1]))  # warm-up: loads the model
    seconds, _ = timed(lambda: list(icl.pipe(texts, batch_size=8)))
    fast_s, _ = timed(lambda: list(nlp.pipe(texts, batch_size=1000)))
    return len(indices), len(texts) / seconds, len(texts) / fast_s


def naive(nlp, texts):
    """(seconds, docs) of the naive loop on `texts`: one full prompt per row of the pipeline's
    template, batch size 1, plain `generate` (the pipeline's decoding is restored after)."""
    pipe = nlp.get_pipe("cllmfs_ner")
    fast = pipe.decoding
    pipe.decoding = dataclasses.replace(fast, reuse_cache=False, batch_size=1)
    try:
        return timed(lambda: list(nlp.pipe(texts, batch_size=1)))
    finally:
        pipe.decoding = fast


def naive_per_type_s(labels, texts, dtype: str) -> float:
    """Seconds of the issue's naive loop on `texts`: ner.v1 with its shipped adapter, one full
    prompt per (document, type), batch size 1, plain `generate`."""
    nlp = make_nlp(labels, SHIPPED, dtype=dtype)
    list(nlp.pipe(texts[:1]))  # loads the model
    return naive(nlp, texts)[0]


def main(output: Path, data: Path, pipeline: Path, n_docs: int, n_naive: int, n_icl: int,
         n_train: int, gpu_id: int = -1, dtype: str = "auto", decoding: dict = None,
         template: str = "ner.v1", start: str = SHIPPED):
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    vocab = spacy.blank("en").vocab
    source, test, train, labels = load_data(data, vocab)
    # the default start, named so that a misfit is an error
    nlp = make_nlp(labels, start, decoding, dtype=dtype, template=template)
    pipe = nlp.get_pipe("cllmfs_ner")
    texts = [doc.text for doc in test[:n_docs]]
    prompter = pipe.prompter
    doc_tokens = [prompter.encode_text(t).ids for t in texts]
    n_tokens = sum(len(t) for t in doc_tokens)
    print(f"{len(texts)} texts, {n_tokens} model tokens, {len(labels)} types {list(labels)}; "
          f"{source}; decoding {pipe.decoding}", flush=True)

    pipe_s, _, shipped_positions = run_pipeline(nlp, texts)
    # ru_maxrss is the peak of the whole process so far: model loading and the pipeline.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_gpu_mb = peak_gpu_allocated_mb(pipe.language_model.lm)
    cuda = peak_gpu_mb is not None
    limit_s = forward_limit(pipe, doc_tokens, batch_size=32)
    print(f"shipped adapter: {pipe_s:.1f} s, limit {limit_s:.1f} s", flush=True)

    subset = texts[:n_naive]
    subset_tokens = sum(len(t) for t in doc_tokens[:n_naive])
    fast_s, fast_docs = timed(lambda: list(nlp.pipe(subset, batch_size=1000)))
    naive_s, naive_docs = naive(nlp, subset)
    print(f"naive: {naive_s:.1f} s against {fast_s:.1f} s", flush=True)
    per_type_s = naive_per_type_s(labels, subset, dtype) if pipe.template.joint else None

    n_shots, icl_dps, icl_pipe_dps = icl_docs_per_s(nlp, labels, train, texts[:n_icl])
    print(f"spacy-llm ICL: {icl_dps:.3f} docs/s against {icl_pipe_dps:.3f}", flush=True)

    examples = [Example(nlp.make_doc(d.text), d) for d in train if d.ents][: 2 * (n_train + 1)]
    train_tps, plain_tps = training(pipe, examples, n_train)

    with tempfile.TemporaryDirectory() as tmp:
        if pipeline is None:
            nlp.to_disk(tmp)
        cold_s, warm_s = load_times(pipeline or Path(tmp))
    decoding_settings = pipe.decoding
    del nlp, pipe

    blank = make_nlp(labels, "blank", decoding, dtype=dtype, template=template)
    blank_s, _, blank_positions = run_pipeline(blank, texts)
    print(f"blank adapter: {blank_s:.1f} s", flush=True)
    blank_lm = blank.get_pipe("cllmfs_ner").language_model

    result = {
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads, device {blank_lm.device}"
                   + (f" ({torch.cuda.get_device_name(blank_lm.device)})" if cuda else ""),
        "model": blank_lm.base_model.name,
        "dtype": str(next(blank_lm.lm.parameters()).dtype),
        "template": template,
        "adapters": {"pipeline": start, "blank": "blank"},
        "decoding": dataclasses.asdict(decoding_settings),
        "texts": source,
        "docs": len(texts),
        "doc_tokens": n_tokens,
        "types": len(labels),
        "limit_tokens_per_s": n_tokens / limit_s,
        "pipeline_tokens_per_s": n_tokens / pipe_s,
        "pipeline_docs_per_s": len(texts) / pipe_s,
        "pipeline_positions": shipped_positions,
        "blank_tokens_per_s": n_tokens / blank_s,
        "blank_docs_per_s": len(texts) / blank_s,
        "blank_positions": blank_positions,
        "naive_docs": len(subset),
        "naive_tokens_per_s": subset_tokens / naive_s,
        "pipeline_tokens_per_s_on_naive_docs": subset_tokens / fast_s,
        "naive_predictions_identical": spans(fast_docs) == spans(naive_docs),
        "naive_per_type_tokens_per_s": subset_tokens / per_type_s if per_type_s else None,
        "icl_docs": min(n_icl, len(texts)),
        "icl_shots": n_shots,
        "icl_docs_per_s": icl_dps,
        "pipeline_docs_per_s_on_icl_docs": icl_pipe_dps,
        "pipeline_over_limit": limit_s / pipe_s,
        "blank_over_limit": limit_s / blank_s,
        "pipeline_over_naive": naive_s / fast_s,
        "pipeline_over_naive_per_type": per_type_s / fast_s if per_type_s else None,
        "pipeline_over_icl": icl_pipe_dps / icl_dps,
        "peak_rss_mb": peak_rss_mb,
        "peak_gpu_allocated_mb": peak_gpu_mb,
        "load_cold_s": cold_s,
        "load_warm_s": warm_s,
        "train_tokens_per_s": train_tps,
        "plain_fwd_bwd_tokens_per_s": plain_tps,
        "train_over_plain": train_tps / plain_tps,
    }
    result["targets_met"] = {
        key: (result[key] <= goal if key in ("peak_rss_mb", "load_warm_s") else result[key] >= goal)
        for key, goal in TARGETS.items()
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.3g}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--pipeline", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--naive-docs", type=int, default=8)
    parser.add_argument("--icl-docs", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=8)
    parser.add_argument("--gpu-id", type=int, default=-1, help="-1: CPU")
    parser.add_argument("--dtype", default="auto",
                        help="the base model's dtype: auto (bfloat16 on CUDA), float32, ...")
    parser.add_argument("--decoding", type=json.loads, default=None,
                        help="[decoding] settings to change, as JSON")
    parser.add_argument("--template", default="ner.v1")
    parser.add_argument("--start", default=SHIPPED,
                        help="the adapter to start from: a shipped adapter's name or a folder")
    args = parser.parse_args()
    main(args.output, args.data, args.pipeline, args.docs, args.naive_docs, args.icl_docs,
         args.train_steps, args.gpu_id, args.dtype, args.decoding, args.template, args.start)
