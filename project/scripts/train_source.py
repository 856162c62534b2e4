"""The source stage on a CPU in resumable chunks: `spacy train` of CONFIG, CHUNK steps at a time.

The source stage takes hours on a CPU. Each chunk is one `spacy train` run of at most
--chunk-steps steps that starts from the previous chunk's adapter
(components.cllmfs_ner.model.start) and continues the config's warmup_linear learning rate where
the previous chunk stopped (spacy_cllmfs.resumed_warmup_linear.v1), with its own seed (the
config's + the chunk's number), so its sentences are drawn afresh. A killed run loses at most
the chunk it was in: run the same command again and it goes on from the last finished chunk
(OUTPUT/chunks.json). What a chunk does not carry over: the optimizer's moment estimates,
which start from zero in each chunk (Adam's bias correction makes the first steps of a chunk
no larger than usual). Each chunk makes spacy train's steps 0 to N, so a chunked run makes one
update per chunk more than one run of the config.

When every step is done, OUTPUT/model-last is the last chunk's pipeline (copied) and
OUTPUT/log.jsonl the chunks' logs joined, updates numbered across chunks, as one `spacy
train` run would leave them.

Usage: python scripts/train_source.py CONFIG OUTPUT --chunk-steps 140 [--gpu-id N] [overrides]
e.g.   python scripts/train_source.py configs/source.cfg training/source --chunk-steps 140 \
           --paths.train corpus/source/train.spacy --paths.dev corpus/source/dev.spacy \
           --paths.labels corpus/source/labels.json
"""
import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import spacy
import srsly
from spacy.cli._util import parse_config_overrides  # spacy train's own parser


def plan(config: dict, chunk_steps: int):
    """[[first step, steps]] of each chunk (lists, as chunks.json holds them), from the
    config's training.max_steps."""
    total = int(config["training"]["max_steps"])
    if total < 1 or chunk_steps < 1:
        raise SystemExit(f"training.max_steps ({total}) and --chunk-steps ({chunk_steps}) must "
                         "be >= 1.")
    return [[first, min(chunk_steps, total - first)] for first in range(0, total, chunk_steps)]


def chunk_overrides(config: dict, first: int, steps: int, start: str, number: int) -> list:
    rate = config["training"]["optimizer"]["learn_rate"]
    if rate.get("@schedules") not in ("warmup_linear.v1", "spacy_cllmfs.resumed_warmup_linear.v1"):
        raise SystemExit("Chunked training continues a warmup_linear learning rate; the config's "
                         f"[training.optimizer.learn_rate] is {rate.get('@schedules')!r}.")
    return [
        "--training.max_steps", str(steps),
        "--training.eval_frequency", str(min(steps, int(config["training"]["eval_frequency"]))),
        "--training.optimizer.learn_rate.@schedules", "spacy_cllmfs.resumed_warmup_linear.v1",
        "--training.optimizer.learn_rate.done_steps", str(first),
        "--system.seed", str(int(config["system"]["seed"]) + number),
        "--components.cllmfs_ner.model.start", start,
    ]


def adapter(chunk_dir: Path) -> str:
    """The adapter a chunk leaves, which the next chunk starts from."""
    return str(chunk_dir / "model-last" / "cllmfs_ner" / "adapter")


def join_logs(chunks, out: Path) -> None:
    """The chunks' JSONL logs as one: evaluations' steps and the component's updates numbered
    across chunks."""
    rows, updates = [], 0
    for first, path in chunks:
        last = updates
        for row in srsly.read_jsonl(path) if path.exists() else []:
            row = dict(row)
            if "step" in row:
                row["step"] += first
            if "update" in row:
                row["update"] += updates
                last = max(last, row["update"])
            rows.append(row)
        updates = last
    srsly.write_jsonl(out, rows)


def main(args, extra) -> None:
    # parse_config_overrides empties the list it is given: it gets a copy
    config = spacy.util.load_config(args.config, overrides=parse_config_overrides(list(extra)))
    chunks = plan(config, args.chunk_steps)
    args.output.mkdir(parents=True, exist_ok=True)
    state_path = args.output / "chunks.json"
    state = srsly.read_json(state_path) if state_path.exists() else {}
    if state and state.get("plan") != chunks:
        raise SystemExit(f"{state_path} was written for other chunks ({state.get('plan')}); "
                         f"this run plans {chunks}. Use another OUTPUT or remove it.")
    done = state.get("done", [])
    start = str(config["components"]["cllmfs_ner"]["model"]["start"])
    for number, (first, steps) in enumerate(chunks):
        out = args.output / f"chunk{number}"
        if number < len(done):
            start = adapter(out)
            continue
        began = time.time()
        print(f"chunk {number + 1} of {len(chunks)}: steps {first} to {first + steps}, "
              f"from {start}", flush=True)
        subprocess.run([sys.executable, "-m", "spacy", "train", str(args.config), "--output",
                        str(out), "--gpu-id", str(args.gpu_id), *extra,
                        "--paths.log", str(out / "log.jsonl"),
                        *chunk_overrides(config, first, steps, start, number)], check=True)
        done.append({"chunk": number, "first": first, "steps": steps,
                     "seconds": round(time.time() - began, 1)})
        srsly.write_json(state_path, {"plan": chunks, "done": done})
        start = adapter(out)
    last = args.output / f"chunk{len(chunks) - 1}" / "model-last"
    shutil.rmtree(args.output / "model-last", ignore_errors=True)
    shutil.copytree(last, args.output / "model-last")
    join_logs([(first, args.output / f"chunk{i}" / "log.jsonl")
               for i, (first, _) in enumerate(chunks)], args.output / "log.jsonl")
    print(f"{sum(c['steps'] for c in done)} steps in {len(chunks)} chunks, "
          f"{sum(c['seconds'] for c in done) / 60:.0f} min: {args.output / 'model-last'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--chunk-steps", type=int, required=True)
    parser.add_argument("--gpu-id", type=int, default=-1)
    main(*parser.parse_known_args())
