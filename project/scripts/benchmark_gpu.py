"""The GPU path's speed and memory, every figure taken in one run (issue 36); on a CPU it runs
too (for checking the script), with small shapes.

0. The span constraint alone: the seconds per document of building the span indexes (on the
   host: the tokenizer), and on the device the seconds per decoding step for the rows of the
   test sentences x 6 types, with random scores, for constraint.SpanConstraint (a Python loop
   over rows, the decoder before issue 36) and tensor_constraint.TensorConstraint (the
   decoder's now), side by side.
1. SmolLM2 (the default model, shipped general adapter), `nlp.pipe` on the WNUT-17 test
   sentences with its 6 described types, once per dtype (--dtypes): documents/s, positions
   read per second (text, questions, answers, padding), the text tokens/s of `nlp.pipe`
   against those of a plain batched forward pass over the same texts in the same run (their
   ratio is the issue's target), and the peak of GPU memory torch allocated.
2. A model of LLaMA-2-7B's shape (--shape 7b: 32 layers, width 4096, MLP 11008, 32 heads) with
   random weights, built on the device in bfloat16, with SmolLM2's tokenizer (vocabulary 49,152
   instead of LLaMA-2's 32,000: 1 % more parameters). Speed and memory only, its entities mean
   nothing. A LoRA training step of the component (the project's rows, cross-entropy +
   InfoNCE, the optimizer step) on WNUT-17 training sentences: seconds per step, tokens/s
   (the real prompt and response tokens of the rows) and model FLOPs utilisation: the FLOPs
   the step executed (torch's FlopCounterMode: matrix products and attention, forward and
   backward, no recomputation) over the time and the device's dense bf16 peak. Then `nlp.pipe`
   documents/s with the 6 types (the answers of random weights run to max_new_tokens more
   often than a trained adapter's: answer tokens per row are reported beside it).
   --shape tiny: a 2-layer, width-64 model of the same code path, to check the script on a CPU.

Writes OUTPUT_DIR/<device>.json (the device name in the file name and inside), the latest run
per device.

Usage: python scripts/benchmark_gpu.py OUTPUT_DIR [--data DATA_DIR] [--docs 0] [--gpu-id 0]
           [--dtypes float32 bfloat16] [--decoding JSON] [--shape 7b] [--big-docs 256]
           [--train-steps 5] [--train-batch 16] [--peak-tflops 0]
  --docs 0: every test sentence; --decoding: the [decoding] block for every pipeline (default:
  a large batch, no cache bound); --peak-tflops 0: from the device name (H100/H200 989, A100 312)
"""
import argparse
import json
import platform
import re
import time
from pathlib import Path

import spacy
import torch
from spacy.training import Example
from spacy.util import registry
from thinc.api import Adam
from torch.utils.flop_counter import FlopCounterMode

from benchmark import SHIPPED, forward_limit, load_data, make_nlp, positions, synchronize
from spacy_cllmfs.loading import BaseModelSpec, default_device
from spacy_cllmfs.rows import collate
from spacy_cllmfs.tensor_constraint import TensorConstraint

SHAPES = {  # LlamaConfig fields
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048),
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
DEFAULT_DECODING = {"batch_size": 4096, "cache_mb": 0}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def peak_tflops(name: str) -> float:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), 0.0)


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device):
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def pipe_figures(nlp, texts) -> dict:
    """nlp.pipe over the texts (after a warm-up): docs/s, positions/s and the text tokens/s of
    nlp.pipe against a plain batched forward pass over the same texts."""
    pipe = nlp.get_pipe("cllmfs_ner")
    lm = pipe.language_model.lm
    list(nlp.pipe(texts[:8]))  # loads the model, computes the prefix cache
    pipe.decode_stats.reset()
    reset_peak(lm.device)
    synchronize(lm.device)
    started = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=100_000))
    synchronize(lm.device)
    seconds = time.perf_counter() - started
    stats = pipe.decode_stats
    read = stats.text + stats.questions + stats.answers + stats.padding
    token_lists = [pipe.prompter.encode_text(t).ids for t in texts]
    n_tokens = sum(map(len, token_lists))
    limit_s = forward_limit(pipe, sorted(token_lists, key=len), batch_size=512)
    return {
        "docs": len(texts), "seconds": seconds, "docs_per_s": len(texts) / seconds,
        "positions_per_s": read / seconds, "text_tokens": n_tokens,
        "pipe_text_tokens_per_s": n_tokens / seconds,
        "forward_text_tokens_per_s": n_tokens / limit_s,
        "pipe_over_forward": limit_s / seconds,
        "peak_gpu_allocated_mb": peak_mb(lm.device),
        "entities": sum(len(d.ents) for d in docs),
        **positions(stats, len(texts), len(pipe.labels)),
    }


def constraint_figures(nlp, texts, steps: int = 8) -> dict:
    """Seconds per step of each constraint on the same random scores (the rows of `texts` x
    the pipeline's types), on the model's device; rows that end leave the batch in both."""
    from spacy_cllmfs.constraint import SpanConstraint, build_span_indexes

    pipe = nlp.get_pipe("cllmfs_ner")
    prompter, device = pipe.prompter, pipe.language_model.lm.device
    started = time.perf_counter()
    indexes = build_span_indexes([nlp.make_doc(t) for t in texts], prompter,
                                 pipe.decoding.max_span_tokens)
    index_s = time.perf_counter() - started
    keys = prompter.keys(list(pipe.labels))
    rows = ([i for i in indexes for _ in keys], [k for _ in indexes for k in keys], prompter)
    vocab = len(prompter.tokenizer)
    generator = torch.Generator(device=device).manual_seed(0)
    scores = [torch.randn((len(rows[0]), vocab), generator=generator, device=device) * 3
              for _ in range(steps)]
    for s in scores:
        s[:, prompter.eos_id] -= 8.0  # long answers, as the slowest case

    def python():
        constraint, active = SpanConstraint(*rows), list(range(len(rows[0])))
        for s in scores:
            constraint.consume(constraint.masked(active, s[: len(active)]).argmax(dim=-1))
            active = [r for r in active if not constraint.done(r)]
            if not active:
                break

    def tensor():
        constraint = TensorConstraint(*rows, device=device)
        active = torch.arange(len(rows[0]), device=device)
        after = constraint.edges(active).tolist()
        for s in scores:
            _, ended = constraint.step(active, s[: len(active)], sum(after))
            ended = ended.tolist()
            keep = [k for k, edges in enumerate(ended) if edges >= 0]
            if not keep:
                break
            after = [ended[k] for k in keep]
            active = active[torch.tensor(keep, device=device)]

    figures = {"rows": len(rows[0]), "steps": steps, "index_s_per_doc": index_s / len(texts)}
    for name, run in (("python_s_per_step", python), ("tensor_s_per_step", tensor)):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        figures[name] = (time.perf_counter() - started) / steps
    figures["python_over_tensor"] = figures["python_s_per_step"] / figures["tensor_s_per_step"]
    return figures


@registry.misc("benchmark_gpu.RandomLlama.v1")
def random_model_spec(shape: str) -> BaseModelSpec:
    """A random LlamaForCausalLM of `shape`, built on the default device in the requested dtype,
    with SmolLM2's tokenizer."""

    def load(dtype):
        from transformers import LlamaConfig, LlamaForCausalLM

        from spacy_cllmfs.loading import smollm2

        _, tokenizer = smollm2("float32").loader(torch.float32)  # the tokenizer is what we need
        config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
                             **SHAPES[shape])
        with torch.device(default_device()):
            model = LlamaForCausalLM(config).to(dtype)
        return model, tokenizer

    return BaseModelSpec(name=f"random-llama-{shape}", loader=load, dtype="bfloat16")


def big_pipeline(shape, labels, decoding):
    nlp = spacy.blank("en")
    base_model = {"@misc": "benchmark_gpu.RandomLlama.v1", "shape": shape}
    pipe = nlp.add_pipe("cllmfs_ner", config={
        "labels": labels, "template": "ner.v1", "decoding": decoding,
        "model": {"start": "blank", "base_model": base_model}})
    nlp.initialize()
    return nlp, pipe


def training_figures(pipe, examples, steps: int, batch: int, peak: float) -> dict:
    """Seconds per update() (LoRA, cross-entropy + InfoNCE, optimizer step), tokens/s and model
    FLOPs utilisation; the first batch warms up."""
    lm = pipe.language_model.lm
    optimizer = Adam(1e-4)
    batches = [examples[i * batch:(i + 1) * batch] for i in range(steps + 1)]
    reset_peak(lm.device)
    with FlopCounterMode(display=False) as counter:  # the warm-up step, counted once
        pipe.update(batches[0], sgd=optimizer)
    flops_per_token = counter.get_total_flops() / real_tokens(pipe, batches[0])
    seconds = tokens = 0
    for examples_ in batches[1:]:
        synchronize(lm.device)
        started = time.perf_counter()
        pipe.update(examples_, sgd=optimizer)
        synchronize(lm.device)
        seconds += time.perf_counter() - started
        tokens += real_tokens(pipe, examples_)
    tokens_per_s = tokens / seconds
    achieved = flops_per_token * tokens_per_s
    return {
        "sentences_per_step": batch, "steps": steps, "seconds_per_step": seconds / steps,
        "tokens_per_s": tokens_per_s, "flops_per_token": flops_per_token,
        "achieved_tflops": achieved / 1e12, "peak_tflops": peak or None,
        "mfu": achieved / (peak * 1e12) if peak else None,
        "peak_gpu_allocated_mb": peak_mb(lm.device),
    }


def real_tokens(pipe, examples) -> int:
    """The prompt and response tokens of the training rows of `examples` (no padding)."""
    rows = pipe.training_rows(examples)
    return int(collate(rows, pipe.prompter.pad_id, "cpu")["attention_mask"].sum())


def main(output: Path, data: Path, n_docs: int, gpu_id: int, dtypes, decoding, shape: str,
         big_docs: int, steps: int, batch: int, peak: float) -> dict:
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    device = torch.device(f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu")
    name = device_name(device)
    peak = peak or peak_tflops(name)
    _, test, train, labels = load_data(data, spacy.blank("en").vocab)
    texts = [doc.text for doc in (test[:n_docs] if n_docs else test)]
    result = {"device": name, "torch": torch.__version__, "decoding": decoding,
              "smollm2": {}, "shape": shape}
    for dtype in dtypes:
        nlp = make_nlp(labels, SHIPPED, decoding, dtype=dtype)
        if "constraint" not in result:
            result["constraint"] = constraint_figures(nlp, texts)
            print("constraint", json.dumps(result["constraint"]), flush=True)
        result["smollm2"][dtype] = pipe_figures(nlp, texts)
        print(dtype, json.dumps(result["smollm2"][dtype]), flush=True)
        del nlp
    nlp, pipe = big_pipeline(shape, labels, decoding)
    lm = pipe.language_model.lm
    result["big_model"] = {
        "parameters": sum(p.numel() for p in lm.parameters()),
        "trainable": sum(p.numel() for p in lm.parameters() if p.requires_grad),
        "dtype": str(lm.dtype)}
    examples = [Example(nlp.make_doc(d.text), d) for d in train if d.ents][:batch * (steps + 1)]
    result["big_model"]["training"] = training_figures(pipe, examples, steps, batch, peak)
    print("training", json.dumps(result["big_model"]["training"]), flush=True)
    result["big_model"]["pipe"] = pipe_figures(nlp, texts[:big_docs])
    print("pipe", json.dumps(result["big_model"]["pipe"]), flush=True)
    output.mkdir(parents=True, exist_ok=True)
    path = output / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".json")
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=0)
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--decoding", type=json.loads, default=DEFAULT_DECODING)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    parser.add_argument("--big-docs", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--peak-tflops", type=float, default=0.0)
    args = parser.parse_args()
    main(args.output, args.data, args.docs, args.gpu_id, args.dtypes, args.decoding, args.shape,
         args.big_docs, args.train_steps, args.train_batch, args.peak_tflops)
