"""What one few-shot `spacy train` costs with many types: wall time and peak resident memory.

Draws an N-way K-shot set (Few-NERD's sampler) from the source corpora's training splits
(corpus/source/<corpus>/train.spacy, converted by convert-source), gives each type its
description from configs/source_types.json, and runs `python -m spacy train CONFIG` on it once
per --pass-tokens value, side by side in one run: each process's peak RSS (getrusage of the
child), wall time and CPU time, printed and written as JSON.

Usage: python scripts/train_cost.py configs/fewshot_cpu.cfg corpus/source metrics/train_cost.json
           --corpora anem wikigold --ways 13 --shots 5 --seed 1 --pass-tokens 1024 1000000
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs import schedule
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.fewshot import sample_episode

HERE = Path(__file__).resolve().parents[1]


def shots(corpus: Path, corpora, ways: int, k: int, seed: int, work: Path):
    vocab = spacy.blank("en").vocab
    docs, described = [], {}
    types = srsly.read_json(HERE / "configs" / "source_types.json")
    for name in corpora:
        for doc in read_docs(corpus / name / "train.spacy", vocab):
            doc.user_data.pop("cllmfs_types", None)  # the component's labels are asked
            docs.append(doc)
        described.update({label: info["description"] for label, info in types[name].items()})
    chosen, indices = sample_episode(docs, ways, k, seed)
    labels = {label: described[label] for label in chosen}
    DocBin(docs=[docs[i] for i in indices]).to_disk(work / "shots.spacy")
    srsly.write_json(work / "labels.json", labels)
    return labels, len(indices), sum(len(docs[i]) for i in indices)


def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="train_cost-"))
    labels, n_docs, n_tokens = shots(args.corpus, args.corpora, args.ways, args.shots,
                                     args.seed, work)
    config = spacy.util.load_config(args.config)
    planned = schedule.overrides(config, n_docs, args.epochs)
    print(f"{len(labels)} types, {n_docs} sentences ({n_tokens} spaCy tokens); "
          f"{planned[1]} steps", flush=True)
    runs = []
    for budget in args.pass_tokens:
        out = work / f"pass{budget}"
        command = [sys.executable, "-m", "spacy", "train", str(args.config), "--output", str(out),
                   "--code", str(HERE / "scripts" / "training_log.py"),
                   "--paths.train", str(work / "shots.spacy"),
                   "--paths.dev", str(work / "shots.spacy"),
                   "--paths.labels", str(work / "labels.json"), "--paths.log",
                   str(out / "log.jsonl"), "--system.seed", str(args.seed),
                   "--components.cllmfs_ner.rows.pass_tokens", str(budget), *planned]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        started = time.time()
        # A fresh wrapper per run: its children's ru_maxrss is this run's peak alone.
        wrapper = [sys.executable, "-c",
                   "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                   "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
                   "print('PEAK_KB', u.ru_maxrss, 'CPU_S', u.ru_utime + u.ru_stime)"]
        done = subprocess.run(wrapper + command, env=env, capture_output=True, text=True)
        seconds = time.time() - started
        if done.returncode:
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit(f"spacy train failed with pass_tokens = {budget}")
        usage = done.stdout.rsplit("PEAK_KB", 1)[1].split()
        peak_kb, cpu_s = int(usage[0]), float(usage[2])
        updates = [r for r in srsly.read_jsonl(out / "log.jsonl") if "update" in r]
        # cpu_seconds: user + system time of the run, which other work on the machine does
        # not inflate as much as it does wall time
        run = {"pass_tokens": budget, "seconds": round(seconds, 1), "cpu_seconds": round(cpu_s),
               "peak_rss_mb": round(peak_kb / 1024), "updates": len(updates),
               "passes_per_update": sum(u["passes"] for u in updates) / max(1, len(updates)),
               "rows_per_update": sum(u["rows"] for u in updates) / max(1, len(updates)),
               "first_loss": updates[0]["loss"] if updates else None,
               "last_loss": updates[-1]["loss"] if updates else None}
        runs.append(run)
        print(json.dumps(run), flush=True)
    result = {"config": str(args.config), "types": labels, "sentences": n_docs,
              "spacy_tokens": n_tokens, "steps": int(planned[1]), "threads": args.threads,
              "runs": runs}
    if len(runs) > 1:
        result["seconds_ratio"] = round(runs[0]["seconds"] / runs[-1]["seconds"], 3)
        result["peak_ratio"] = round(runs[0]["peak_rss_mb"] / runs[-1]["peak_rss_mb"], 3)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("corpus", type=Path, help="corpus/source, as convert-source writes it")
    parser.add_argument("output", type=Path)
    parser.add_argument("--corpora", nargs="+", default=["anem", "wikigold"])
    parser.add_argument("--ways", type=int, default=13)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pass-tokens", type=int, nargs="+", default=[1024, 1_000_000])
    main(parser.parse_args())
