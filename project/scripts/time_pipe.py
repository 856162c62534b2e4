"""Docs/s and peak memory of `nlp.pipe` with the shipped general adapter, run with the package
found in CODE (a checkout of this repository), to compare two versions of the code side by side:
run it once per checkout, one after the other, on the same machine.

The texts and types are the benchmark's (scripts/benchmark.py): the first N WNUT-17 test
sentences and its 6 described types when DATA_DIR holds WNUT-17. Prints one JSON line with the
decoding settings, docs/s, peak RSS and the entities (to check that predictions are the same).

Usage: python scripts/time_pipe.py CODE [--docs 100] [--data DATA_DIR] [--decoding JSON]
                                     [--gpu-id -1] [--dtype auto] [--template ner.v1]
                                     [--start general-ner.v1]
  --decoding: settings of the [decoding] block to change, e.g. '{"merge_adapter": false}', to
  compare two settings of one checkout the same way
  --gpu-id, --dtype: as in scripts/benchmark.py; on a GPU the line also gives the peak of GPU
  memory allocated by torch
  --template, --start: the component's template and its adapter (a shipped name or a folder)
  e.g. git worktree add /tmp/before COMMIT; python scripts/time_pipe.py /tmp/before; python
  scripts/time_pipe.py ..
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path


def main(code: Path, n_docs: int, data: Path, decoding: dict = None, gpu_id: int = -1,
         dtype: str = "auto", template: str = "ner.v1", start: str = None) -> None:
    sys.path.insert(0, str(code.resolve()))
    import spacy
    import spacy_cllmfs

    from benchmark import SHIPPED, load_data, make_nlp, peak_gpu_allocated_mb

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    _, test, _, labels = load_data(data, spacy.blank("en").vocab)
    nlp = make_nlp(labels, start or SHIPPED, decoding, dtype=dtype, template=template)
    lm = nlp.get_pipe("cllmfs_ner").language_model.lm
    texts = [doc.text for doc in test[:n_docs]]
    list(nlp.pipe(texts[:4]))  # warm-up
    started = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=1000))
    seconds = time.perf_counter() - started
    print(json.dumps({
        "code": spacy_cllmfs.__file__, "template": template, "start": start or SHIPPED,
        "decoding": str(nlp.get_pipe("cllmfs_ner").decoding),
        "docs": len(texts), "docs_per_s": len(texts) / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(lm.device), "dtype": str(lm.dtype),
        "peak_gpu_allocated_mb": peak_gpu_allocated_mb(lm),
        "ents": [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs],
    }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("code", type=Path)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--decoding", type=json.loads, default=None)
    parser.add_argument("--gpu-id", type=int, default=-1, help="-1: CPU")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--template", default="ner.v1")
    parser.add_argument("--start", default=None, help="default: the shipped general-ner.v1")
    args = parser.parse_args()
    main(args.code, args.docs, args.data, args.decoding, args.gpu_id, args.dtype,
         args.template, args.start)
