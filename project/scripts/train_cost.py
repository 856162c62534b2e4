"""What one few-shot `spacy train` costs with many types: wall time and peak resident memory.

Draws an N-way K-shot set (Few-NERD's sampler) from the source corpora's training splits
(corpus/source/<corpus>/train.spacy, converted by convert-source), gives each type its
description from configs/source_types.json, and runs `python -m spacy train CONFIG` on it once
per --pass-tokens value and --variant, one after the other in one run: each process's peak RSS
(getrusage of the child), wall time and CPU time, printed and written as JSON. With
--eval-limit N, each trained pipeline (model-last) is also scored (strict seqeval, all the set's
types asked) on N held-out sentences of each corpus (corpus/source/<corpus>/heldout.spacy, drawn
with random.Random(0)), so that a cheaper setting can be checked for the same results;
--rescore adds those scores to an earlier run's OUTPUT without training again.

Usage: python scripts/train_cost.py fewshot corpus/source metrics/train_cost.json
           --corpora anem wikigold --ways 13 --shots 5 --seed 1 --pass-tokens 1024 1000000
       ... --pass-tokens 512 --variant recipe
           --variant absent2=--components.cllmfs_ner.rows.absent_types=2 --eval-limit 50
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

# scripts/compare.py: the same scoring, subsets and --variant overrides
from compare import override_args
from spacy_cllmfs.scoring import fixed_subset, score_pipeline
from spacy_cllmfs import configs, schedule
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.fewshot import sample_episode
from spacy_cllmfs.rows import TYPES_KEY

HERE = Path(__file__).resolve().parents[1]


def shots(corpus: Path, corpora, ways: int, k: int, seed: int, work: Path):
    vocab = spacy.blank("en").vocab
    docs, described = [], {}
    types = srsly.read_json(HERE / "configs" / "source_types.json")
    for name in corpora:
        for doc in read_docs(corpus / name / "train.spacy", vocab):
            doc.user_data.pop(TYPES_KEY, None)  # the component's labels are asked
            docs.append(doc)
        described.update({label: info["description"] for label, info in types[name].items()})
    chosen, indices, _ = sample_episode(docs, ways, k, seed)
    labels = {label: described[label] for label in chosen}
    DocBin(docs=[docs[i] for i in indices]).to_disk(work / "shots.spacy")
    srsly.write_json(work / "labels.json", labels)
    return labels, len(indices), sum(len(docs[i]) for i in indices)


def parse_variant(value: str):
    """NAME or NAME=--section.key=value,--other.key=value: a name and its config overrides."""
    name, _, overrides = value.partition("=")
    items = overrides.split(",") if overrides else []
    if not name or any(not item.startswith("--") or "=" not in item for item in items):
        raise SystemExit(f"--variant wants NAME or NAME=--section.key=value,... (got {value!r})")
    return name, override_args(overrides) if overrides else []


def heldout(corpus: Path, corpora, limit: int, vocab):
    """`limit` held-out sentences of each corpus, drawn with random.Random(0), without their
    corpus's own type list (the pipeline asks its labels)."""
    gold = []
    for name in corpora:
        docs = read_docs(corpus / name / "heldout.spacy", vocab)
        for i in fixed_subset(docs, limit):
            docs[i].user_data.pop(TYPES_KEY, None)
            gold.append(docs[i])
    return gold


def run_dir(work: Path, budget: int, variant: str) -> Path:
    """Where `spacy train` writes the run of one pass_tokens value and variant."""
    return work / f"pass{budget}-{variant}"


def evaluate(pipeline: Path, gold, labels, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.load(pipeline)
    started = time.time()
    scores = score_pipeline(nlp, gold, labels)
    return {"heldout_docs": len(gold), "heldout_seconds": round(time.time() - started, 1),
            **{f"heldout_{m}": round(scores[m], 4) for m in ("precision", "recall", "f1")}}


def rescore(args) -> None:
    """--rescore: score the pipelines of an earlier run (its JSON names their folder) on the
    held-out sentences, and add the scores to its JSON."""
    result = srsly.read_json(args.output)
    gold = heldout(args.corpus, args.corpora, args.eval_limit, spacy.blank("en").vocab)
    for run in result["runs"]:
        out = run_dir(Path(result["work_dir"]), run["pass_tokens"], run["variant"])
        run.update(evaluate(out / "model-last", gold, list(result["types"]), args.threads))
        print(json.dumps(run), flush=True)
    result["eval_limit"] = args.eval_limit
    srsly.write_json(args.output, result)
    print(f"wrote {args.output}")


def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="train_cost-"))
    labels, n_docs, n_tokens = shots(args.corpus, args.corpora, args.ways, args.shots,
                                     args.seed, work)
    config = spacy.util.load_config(args.config)
    planned = schedule.overrides(config, n_docs, args.epochs)
    steps = schedule.fewshot_steps(n_docs, int(config["training"]["batcher"]["size"]),
                                   args.epochs)
    print(f"{len(labels)} types, {n_docs} sentences ({n_tokens} spaCy tokens); "
          f"{steps} steps", flush=True)
    gold = heldout(args.corpus, args.corpora, args.eval_limit, spacy.blank("en").vocab) \
        if args.eval_limit else []
    runs = []
    for budget, (variant, extra) in [(b, v) for b in args.pass_tokens for v in args.variants]:
        out = run_dir(work, budget, variant)
        command = [sys.executable, "-m", "spacy", "train", str(args.config), "--output", str(out),
                   "--paths.train", str(work / "shots.spacy"),
                   "--paths.dev", str(work / "shots.spacy"),
                   "--paths.labels", str(work / "labels.json"), "--paths.log",
                   str(out / "log.jsonl"), "--system.seed", str(args.seed),
                   "--components.cllmfs_ner.rows.pass_tokens", str(budget), *planned, *extra]
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
        run = {"variant": variant, "overrides": extra, "pass_tokens": budget,
               "seconds": round(seconds, 1), "cpu_seconds": round(cpu_s),
               "peak_rss_mb": round(peak_kb / 1024), "updates": len(updates),
               "passes_per_update": sum(u["passes"] for u in updates) / max(1, len(updates)),
               "rows_per_update": sum(u["rows"] for u in updates) / max(1, len(updates)),
               "first_loss": updates[0]["loss"] if updates else None,
               "last_loss": updates[-1]["loss"] if updates else None}
        if gold:
            run.update(evaluate(out / "model-last", gold, list(labels), args.threads))
        runs.append(run)
        print(json.dumps(run), flush=True)
    result = {"config": str(args.config), "work_dir": str(work), "eval_limit": args.eval_limit,
              "types": labels, "sentences": n_docs,
              "spacy_tokens": n_tokens, "steps": steps, "threads": args.threads,
              "runs": runs}
    if len(runs) > 1:
        result["seconds_ratio"] = round(runs[0]["seconds"] / runs[-1]["seconds"], 3)
        result["peak_ratio"] = round(runs[0]["peak_rss_mb"] / runs[-1]["peak_rss_mb"], 3)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=configs.resolve,
                        help="a config file, or a shipped config's name (fewshot)")
    parser.add_argument("corpus", type=Path, help="corpus/source, as convert-source writes it")
    parser.add_argument("output", type=Path)
    parser.add_argument("--corpora", nargs="+", default=["anem", "wikigold"])
    parser.add_argument("--ways", type=int, default=13)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pass-tokens", type=int, nargs="+", default=[1024, 1_000_000])
    parser.add_argument("--variant", action="append", default=None,
                        help="NAME[=--section.key=value,...]: config overrides of one run "
                             "(repeatable; default: the config as it is, named 'recipe')")
    parser.add_argument("--eval-limit", type=int, default=0,
                        help="score each trained pipeline on this many held-out sentences of "
                             "each corpus (0: not scored)")
    parser.add_argument("--rescore", action="store_true",
                        help="train nothing: score the pipelines of the run that wrote OUTPUT "
                             "on --eval-limit held-out sentences of each corpus")
    parsed = parser.parse_args()
    parsed.variants = [parse_variant(v) for v in parsed.variant or ["recipe"]]
    if parsed.rescore and parsed.eval_limit < 1:
        raise SystemExit("--rescore needs --eval-limit N (N >= 1)")
    if parsed.rescore:
        rescore(parsed)
    else:
        main(parsed)
