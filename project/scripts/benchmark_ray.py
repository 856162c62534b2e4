"""Ray Data throughput: `python -m spacy_cllmfs.distributed` with 1 and 2 actors, against
`nlp.pipe` in this process, on the same texts, in one run.

Every actor runs torch with one thread (Ray gives each actor one CPU); `nlp.pipe` here uses
all of this machine's cores. Peak memory per actor is the largest resident set size seen by
sampling the actor processes every 0.2 s. The first run of each setting also loads the model:
it is timed as it is (a user's job pays it too), and the figures say so.

Texts: the first --docs sentences of WNUT-17's test split when DATA_DIR holds it, else the
bundled sample's test sets (run `convert` first).

Usage: python scripts/benchmark_ray.py PIPELINE OUTPUT_JSON [--data DATA_DIR] [--docs 200]
"""
import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import psutil
import spacy
import torch

from benchmark import load_data  # the sibling script: same texts as the speed benchmark
from spacy_cllmfs.distributed import run


def texts_from(data: Path, n_docs: int):
    """The benchmark's texts (benchmark.py's reader): words joined by single spaces."""
    source, test, _ = load_data(data, spacy.blank("en").vocab)
    return source, [doc.text.strip() for doc in test[:n_docs]]


class ActorMemory:
    """Peak RSS (MB) of each Ray Data actor process seen while running."""

    def __init__(self):
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self):
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                if "MapWorker" in " ".join(proc.info["cmdline"] or []) and proc.info["memory_info"]:
                    rss = proc.info["memory_info"].rss / 2**20
                    self.peak[proc.info["pid"]] = max(rss, self.peak.get(proc.info["pid"], 0))
            time.sleep(0.2)


def main(pipeline: str, output: Path, data: Path, n_docs: int) -> None:
    source, texts = texts_from(data, n_docs)
    result = {"texts": source, "docs": len(texts), "cpu_cores": psutil.cpu_count(),
              "pipeline": pipeline, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                                  for i, t in enumerate(texts)), encoding="utf8")
        for actors in (1, 2):
            with ActorMemory() as memory:
                start = time.perf_counter()
                summary = run(pipeline, corpus, Path(tmp) / f"out{actors}", actors=actors,
                              batch_size=16)
                seconds = time.perf_counter() - start
            result["runs"][f"ray_{actors}_actors"] = {
                "records_per_s": summary["records"] / seconds, "seconds": round(seconds, 1),
                "peak_rss_mb_per_actor": sorted(round(v) for v in memory.peak.values()),
            }
            print(actors, "actors:", result["runs"][f"ray_{actors}_actors"], flush=True)
        nlp = spacy.load(pipeline)
        start = time.perf_counter()
        list(nlp.pipe(texts, batch_size=16))
        seconds = time.perf_counter() - start
        result["runs"]["nlp_pipe_in_process"] = {
            "records_per_s": len(texts) / seconds, "seconds": round(seconds, 1),
            "torch_threads": torch.get_num_threads(), "model_loaded_before_timing": True,
        }
        print("nlp.pipe:", result["runs"]["nlp_pipe_in_process"], flush=True)
    runs = result["runs"]
    result["two_over_one_actor"] = runs["ray_2_actors"]["records_per_s"] / runs["ray_1_actors"]["records_per_s"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2), encoding="utf8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline")
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=200)
    args = parser.parse_args()
    main(args.pipeline, args.output, args.data, args.docs)
