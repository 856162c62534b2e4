"""Peak memory and speed of `nlp.pipe` for several `decoding.cache_mb` budgets, side by side.

Each budget runs in its own fresh interpreter (peak resident memory is per process), one after
the other, on the same documents, with the shipped general adapter and the benchmark's texts
and types (WNUT-17 test and its 6 described types when DATA_DIR holds it). Prints, per budget:
docs/s, peak RSS (model loading included), rows per batch, and the speed relative to the first
budget given.

Usage: python scripts/decode_memory.py OUTPUT_JSON [--data DATA_DIR] [--docs 100]
       [--cache-mb 0 160 320 640]    (0: no memory bound, decoding.batch_size rows)
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(data: Path, n_docs: int, cache_mb: float) -> dict:
    import spacy

    from benchmark import SHIPPED, load_data, make_nlp, run_pipeline

    _, test, _, labels = load_data(data, spacy.blank("en").vocab)
    nlp = make_nlp(labels, SHIPPED, {"cache_mb": cache_mb})
    texts = [doc.text for doc in test[:n_docs]]
    seconds, _, positions = run_pipeline(nlp, texts)
    return {"cache_mb": cache_mb, "docs": len(texts), "docs_per_s": len(texts) / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows_per_batch": positions["rows_per_batch"],
            "batch_size": nlp.get_pipe("cllmfs_ner").decoding.batch_size}


def main(output: Path, data: Path, n_docs: int, budgets) -> None:
    results = []
    for cache_mb in budgets:
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, str(output), "--child", str(cache_mb), "--docs", str(n_docs)]
            + (["--data", str(data)] if data else []),
            capture_output=True, text=True, check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["wall_s"] = time.perf_counter() - started
        results.append(result)
        print(json.dumps(result), flush=True)
    for result in results:
        result["speed_vs_first"] = result["docs_per_s"] / results[0]["docs_per_s"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    print(f"{'cache_mb':>9} {'docs/s':>7} {'peak MB':>8} {'rows/batch':>10} {'speed':>6}")
    for r in results:
        print(f"{r['cache_mb']:>9} {r['docs_per_s']:>7.2f} {r['peak_rss_mb']:>8.0f} "
              f"{r['rows_per_batch']:>10.1f} {r['speed_vs_first']:>6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--cache-mb", type=float, nargs="+", default=[0, 160, 320, 640])
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.data, args.docs, args.child)))
    else:
        main(args.output, args.data, args.docs, args.cache_mb)
