"""CLLMFS against its ablations and the alternatives a spaCy user has, on the same N-way
K-shot training sets (one per seed and K) and the same test documents.

Systems (each trained/prompted on the same shots, scored with strict seqeval micro F1 on the
seed's N types; every LLM system gets the types' one-line descriptions, --descriptions):
  cllmfs             the few-shot recipe (CONFIG): from the shipped general adapter, loss v2
                     (cross-entropy + InfoNCE with noise), the schedule scaled by the shots
                     (spacy_cllmfs.schedule: --epochs, warmup and linear decay)
  cllmfs_blank       the earlier recipe (--blank-config): from a blank adapter, its own steps
  no_contrastive     cllmfs with loss.weight = 0 (plain LoRA fine-tuning)
  no_noise           cllmfs with loss.noise = 0 (InfoNCE without Gaussian noise)
  general_zero_shot  the shipped general adapter, untrained on the shots (greedy decoding)
  spacy_ner          spaCy's own `ner`, `spacy init config -p ner` (CPU, efficiency) as is
  spacy_llm_icl      spacy-llm's `spacy.NER.v3` on the same base model (spacy_cllmfs.CLLMFS.v1,
                     no adapter), the K shots as in-context examples, the descriptions as its
                     label_definitions
  zero_shot          the component with a blank adapter, untrained (base model + constrained
                     decoding)
More variants of cllmfs: --variant NAME=--components.cllmfs_ner.loss.layer=20,--training.x=y
(--systems with no name: the variants alone). A run is kept under a key of what determines it
(the config's settings, not its comments; the data; K; the seed; ...) and reused.

Rehearsal (--rehearsal N --rehearsal-corpus corpus/source/train.spacy): cllmfs, its ablations
and the variants train on the shots plus N sentences of the source stage's corpora, drawn with
random.Random(seed), each asked about its own corpus's types (doc.user_data["cllmfs_types"]), so
that the adapter keeps what the general stage taught it; the schedule counts them. The other
systems see the shots alone. --own-text N instead: N sentences of the text a user would process
(the scored split's sentences outside the scored subset, or --own-text-split's), labelled by the
starting adapter zero-shot on the seed's types (spacy_cllmfs.own_text), as the project's `train`
uses them: only where the adapter finds --own-text-min-recall of the shots' entities (default
spacy_cllmfs.convention.MIN_RECALL; 0: always). Elsewhere (--if-rejected) the shots alone, or
the --rehearsal sentences ("source"); each run says which ("rehearsal_used"). Where the own
text was used, --fallback on gives the trained pipeline the per-type fallback to the starting
adapter (spacy_cllmfs.fallback, as `train --fallback on` does): 96 more sentences of the same
pool, neither scored, shots nor trained on, decide it; each run says which types went back
("fallback") and the answers it counted. Off by default (--fallback on: with it).

Without --dev, the LLM systems are trained for their steps and scored as they end
(model-last): a few-shot user has no dev set to pick a checkpoint with. spaCy's ner keeps its
default config, whose patience needs a dev corpus: it gets the shots themselves.

Usage: python scripts/compare.py CONFIG NER_CONFIG CORPUS_DIR WORK_DIR METRICS_DIR
           --blank-config BLANK_CONFIG --descriptions TYPES_JSON
           --ways 3 --shots 5 10 --seeds 1 2 3 [--test-limit 500] [--jobs 2] [--epochs 10]
Reads CORPUS_DIR/train.spacy and test.spacy (--split dev: dev.spacy, to choose settings). Each
run's scores go to WORK_DIR/runs/<system>_k<K>_seed<S>-<key>.json, where <key> is a hash of
what determines the run (the config file's text, the system's overrides, the schedule, the
descriptions, the data files, N, K, the seed, the split and its subset): a run is reused only
when all of these are unchanged, so after a config change the command re-runs what the change
touches. Writes METRICS_DIR/compare.json, compare.md, compare.png (F1 by system and K) and
training.png (each trained system's loss and answer rate per update, by K and seed), with the
writers of scripts/compare_report.py.
"""
import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import spacy
import srsly
from spacy.tokens import DocBin

from compare_report import (SYSTEMS, cell, plot_training, seed_record, system_entry,
                            training_summary, write_summary)
from spacy_cllmfs import configs, convention, fallback, own_text, recipe, schedule
from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.prompts import label_dict
from spacy_cllmfs.fewshot import sample_episode
from spacy_cllmfs.bridge import in_context_pipeline
from spacy_cllmfs.scoring import fixed_subset, score_pipeline

# Trained with CONFIG and the scaled schedule, with these overrides.
ABLATIONS = {
    "cllmfs": [],
    "no_contrastive": ["--components.cllmfs_ner.loss.weight", "0"],
    "no_noise": ["--components.cllmfs_ner.loss.noise", "0"],
}
# Untrained on the shots, so K does not matter: one run per seed serves every K.
UNTRAINED = {
    "general_zero_shot": [],
    "zero_shot": ["--components.cllmfs_ner.model.start", "blank"],
}
# The untrained systems decode greedily with no entity threshold, the setting dev chose for the
# general adapter: the recipe's thresholds are for adapters trained on shots, which answer less.
GREEDY = {key: str(value) for key, value in convention.GREEDY.items()}


def overrides_of(args, name: str) -> list:
    """The config overrides of a system (for an untrained one, its decoding reset to greedy
    where the config sets the thresholds)."""
    found = {**ABLATIONS, **UNTRAINED, **args.variants}.get(name, [])
    if name in UNTRAINED:
        decoding = spacy.util.load_config(args.config)["components"]["cllmfs_ner"]["decoding"]
        for key, value in GREEDY.items():
            if key in decoding:
                found = [*found, f"--components.cllmfs_ner.decoding.{key}", value]
    return found


def config_of(args, name: str) -> Path:
    return {"spacy_ner": args.ner_config, "cllmfs_blank": args.blank_config}.get(name, args.config)


def descriptions(args, types):
    """{type: description} for the seed's types (a list when no descriptions are given)."""
    if args.descriptions is None:
        return list(types)
    known = {k: v for k, v in srsly.read_json(args.descriptions).items() if not k.startswith("_")}
    missing = [t for t in types if t not in known]
    if missing:
        raise SystemExit(f"{args.descriptions} has no description for {missing}.")
    return {t: known[t] for t in types}


@functools.lru_cache(maxsize=None)
def _digest(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def _settings(path) -> str:
    """A config's settings as text, without its comments: editing a comment keeps the runs."""
    return spacy.util.load_config(path, interpolate=False).to_str()


def run_key(args, name: str, k: int, seed) -> str:
    """A hash of what determines a run. The untrained systems see no shots: K is left out,
    so their run serves every K of a seed (same types, same test sentences); with seed None,
    the key of such a run but for the seed, which any seed drawing the same types shares."""
    config = config_of(args, name)
    scheduled = name in ABLATIONS or name in args.variants
    parts = {
        "system": name, "config": _settings(config) if config else None,
        "overrides": [str(o) for o in overrides_of(args, name)],
        "schedule": [args.epochs, args.warmup] if scheduled else None,
        "descriptions": _digest(args.descriptions)
        if args.descriptions and name != "spacy_ner" else None,
        "train": _digest(args.corpus / "train.spacy"),
        "eval": _digest(args.corpus / f"{args.split}.spacy"), "split": args.split,
        "test_limit": args.test_limit, "ways": args.ways, "k": k, "seed": seed,
        "dev": _digest(args.dev) if args.dev else None,
        "icl_max_new_tokens": args.icl_max_new_tokens if name == "spacy_llm_icl" else None,
    }
    if scheduled and args.own_text:  # only when used, so that earlier runs keep their keys
        parts["own_text"] = [args.own_text, args.own_text_split,
                             args.own_text_min_recall]
    if scheduled and args.rehearsal:
        parts["rehearsal"] = [args.rehearsal, _digest(args.rehearsal_corpus)]
        if args.own_text and args.if_rejected != "source":  # earlier runs keep their keys
            parts["if_rejected"] = args.if_rejected
    if scheduled and args.own_text and args.fallback == "on":  # earlier runs keep theirs
        parts["fallback"] = [fallback.RATIO, fallback.MIN_ANSWERS, fallback.N_TEXTS]
    if name in UNTRAINED:
        parts.pop("k")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf8")).hexdigest()[:12]


def run_path(args, name: str, k: int, seed: int) -> Path:
    return args.work / "runs" / f"{name}_k{k}_seed{seed}-{run_key(args, name, k, seed)}.json"


def rehearsal_docs(args, vocab, seed: int):
    """--rehearsal sentences of the source corpora, drawn as the recipe's corpus reader draws
    them (spacy_cllmfs.recipe.rehearsal_docs: random.Random(seed), in corpus order); each keeps
    its own corpus's types in user_data, which its training rows ask about."""
    if not args.rehearsal:
        return []
    if args.rehearsal_corpus is None or not Path(args.rehearsal_corpus).is_file():
        raise SystemExit("--rehearsal needs --rehearsal-corpus, a converted source corpus "
                         f"(e.g. corpus/source/train.spacy); got {args.rehearsal_corpus}.")
    try:
        return recipe.rehearsal_docs(str(args.rehearsal_corpus), args.rehearsal, seed, vocab)
    except ValueError as err:
        raise SystemExit(f"--rehearsal {args.rehearsal}: {err}")


def own_text_corpus(args, work: Path, scored, shots, labels, seed: int):
    """--own-text N: N sentences of the text a user would process, labelled by the starting
    adapter zero-shot (spacy_cllmfs.own_text, with CONFIG's model block) on the seed's types:
    the rehearsal of the scheduled systems in place of the source corpora's. They are drawn
    from --own-text-split (default: the scored split), never among the scored sentences or the
    shots; their gold entities are not read. Written once per K-shot set
    (WORK/k<K>/seed<S>/own_text<N>-<split>-<hash>.spacy) and reused. Returns the path and the
    share of the shots' entities the adapter finds (None: not checked); no path when that share
    is below --own-text-min-recall. The check is kept beside the path (.json)."""
    split = args.own_text_split
    # what decides the draw and its use: N, the split, which sentences are scored, the check
    drawn = json.dumps([args.own_text, split, args.split, args.test_limit,
                        args.own_text_min_recall]).encode("utf8")
    path = work / f"own_text{args.own_text}-{split}-{hashlib.sha256(drawn).hexdigest()[:8]}.spacy"
    check = path.with_suffix(".json")
    if path.exists() or check.exists():  # drawn and checked before
        recall = srsly.read_json(check)["shots_recall"] if check.exists() else None
        return (path if path.exists() else None), recall
    labels = label_dict(labels)  # {type: description}, also when none were given
    pool = read_docs(args.corpus / f"{split}.spacy", spacy.blank("en").vocab)
    try:
        texts = own_text.draw([d.text for d in pool], args.own_text, seed,
                              exclude=[d.text for d in [*scored, *shots]])
    except ValueError as err:
        raise SystemExit(f"--own-text: {split}.spacy: {err} Score a subset (--test-limit) "
                         "or draw from another split (--own-text-split).")
    nlp, use, recall = convention.check(shots, labels, args.own_text_min_recall, args.config)
    if use:
        DocBin(docs=own_text.labelled(nlp, texts, labels), store_user_data=True).to_disk(path)
    srsly.write_json(check, {"shots_recall": recall})
    return (path if path.exists() else None), recall


def fallback_texts(args, scored, shots, own, seed: int):
    """The sentences that decide the per-type fallback: fallback.N_TEXTS of the own text's
    split, drawn with random.Random(seed) among those neither scored, shots nor trained on
    (`own`: the own-text docs)."""
    pool = read_docs(args.corpus / f"{args.own_text_split}.spacy", spacy.blank("en").vocab)
    seen = [d.text for d in [*scored, *shots, *own]]
    return own_text.draw([d.text for d in pool], fallback.N_TEXTS, seed, exclude=seen)


def spacy_cli(*args, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-m", "spacy", *map(str, args)], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def run_unit(args, k: int, seed: int, threads: int):
    """Every system for one K-shot set; returns the names of the runs written."""
    import torch

    torch.set_num_threads(threads)
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)  # the pipelines scored here load onto the GPU
    work = args.work / f"k{k}" / f"seed{seed}"
    runs = args.work / "runs"
    work.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    vocab = spacy.blank("en").vocab
    train = read_docs(args.corpus / "train.spacy", vocab)
    test = read_docs(args.corpus / f"{args.split}.spacy", vocab)
    test = [test[i] for i in fixed_subset(test, args.test_limit)]
    types, indices, walk = sample_episode(train, args.ways, k, seed)
    shots_path, labels_path = work / "shots.spacy", work / "labels.json"
    shots = [train[i] for i in indices]
    DocBin(docs=shots, store_user_data=True).to_disk(shots_path)
    labels = descriptions(args, types)
    srsly.write_json(labels_path, labels)
    dev = args.dev if args.dev else shots_path

    def common(train_path=shots_path):
        return ["--paths.train", train_path, "--paths.dev", dev, "--system.seed", seed]

    scheduled = any(name in args.systems for name in ABLATIONS) or bool(args.variants)
    own_corpus, shots_recall = own_text_corpus(args, work, test, shots, labels, seed) \
        if args.own_text and scheduled else (None, None)
    if own_corpus:
        rehearsal_corpus, rehearsal = own_corpus, read_docs(own_corpus, vocab)
    elif args.own_text and scheduled and args.if_rejected == "shots":
        rehearsal_corpus, rehearsal = None, []  # the adapter's convention is not the shots'
    else:
        rehearsal_corpus = args.rehearsal_corpus
        rehearsal = rehearsal_docs(args, vocab, seed)
    used = "own_text" if own_corpus else "source" if rehearsal else "none"
    evaluations = 4 if args.dev else 1  # checkpoints chosen on dev: evaluate a few times
    config = spacy.util.load_config(args.config)
    scheduled_train = shots_path
    if isinstance(config["training"]["max_steps"], dict):
        # The packaged recipe (spacy_cllmfs.recipe): its corpus reader mixes in the same
        # rehearsal sentences (random.Random(seed) over the same file, after the shots) and
        # its schedule counts them; only the settings are passed.
        corpus = str(rehearsal_corpus) if rehearsal else "null"
        planned = ["--paths.rehearsal", corpus, "--corpora.train.rehearsal", str(len(rehearsal))]
    elif rehearsal:
        scheduled_train = work / f"shots_rehearsal{len(rehearsal)}.spacy"
        DocBin(docs=shots + rehearsal, store_user_data=True).to_disk(scheduled_train)
        planned = []
    else:
        planned = []
    planned += schedule.overrides(config, len(indices) + len(rehearsal), args.epochs,
                                  args.warmup, evaluations=evaluations)
    variants = {**{name: ABLATIONS[name] for name in ABLATIONS if name in args.systems},
                **args.variants}
    written = []

    def done(name):
        return run_path(args, name, k, seed).exists()

    def save(name, result, started):
        result = {**result, "system": name, "shots": k, "seed": seed, "types": types,
                  "train_docs": len(indices), "test_docs": len(test),
                  "key": run_key(args, name, k, seed), "sampler_walk": walk,
                  "seconds": round(time.time() - started, 1)}
        srsly.write_json(run_path(args, name, k, seed), result)
        written.append(name)
        print(f"k={k} seed={seed} {name}: F1 {100 * result['f1']:.1f} "
              f"({result['seconds']:.0f} s)", flush=True)

    def trained(name, config_path, overrides, train_path=shots_path, extra=None,
                fallback_on=None):
        started = time.time()
        out = work / name
        # the per-update log (loss, answer rates), where the config has the JSONL logger
        has_log = "log" in spacy.util.load_config(config_path)["paths"]
        log = ["--paths.log", out / "log.jsonl"] if has_log else []
        spacy_cli("train", config_path, "--output", out,
                  *common(train_path), "--paths.labels", labels_path, "--gpu-id", args.gpu_id,
                  *log, *overrides, threads=threads)
        stage = "model-best" if args.dev else "model-last"
        nlp = spacy.load(out / stage)
        extra = dict(extra or {})
        if fallback_on is not None:  # the recipe's per-type fallback (spacy_cllmfs.fallback)
            back, start, now = fallback.apply(nlp, fallback_on)
            if back:
                nlp.to_disk(out / stage)
            extra.update(fallback=back, fallback_answers={"start": start, "trained": now,
                                                          "texts": len(fallback_on)})
        result = score_pipeline(nlp, test, types)
        save(name, {**result, **training_summary(out / "log.jsonl"), **extra}, started)

    checked_on = fallback_texts(args, test, shots, rehearsal, seed) \
        if own_corpus and args.fallback == "on" else None
    for name, overrides in variants.items():
        if not done(name):
            trained(name, args.config, [*planned, *overrides], scheduled_train,
                    {"rehearsal_used": used, "shots_recall": shots_recall}, checked_on)
    if "cllmfs_blank" in args.systems and not done("cllmfs_blank"):
        if args.blank_config is None:
            raise SystemExit("cllmfs_blank needs --blank-config (the recipe from a blank adapter).")
        steps = spacy.util.load_config(args.blank_config)["training"]["max_steps"]
        trained("cllmfs_blank", args.blank_config,
                ["--training.eval_frequency", schedule.eval_frequency(steps, evaluations)])
    if "spacy_ner" in args.systems and not done("spacy_ner"):
        started = time.time()
        out = work / "spacy_ner"
        spacy_cli("train", args.ner_config, "--output", out, *common(), threads=threads)
        save("spacy_ner", score_pipeline(spacy.load(out / "model-best"), test, types, 256), started)
    if "spacy_llm_icl" in args.systems and not done("spacy_llm_icl"):
        started = time.time()
        base = spacy.util.load_config(args.config)["components"]["cllmfs_ner"]["model"]
        nlp = in_context_pipeline(base["base_model"], labels, read_docs(shots_path, vocab),
                           args.icl_max_new_tokens)
        save("spacy_llm_icl", score_pipeline(nlp, test, types, 8), started)
    for name in UNTRAINED:
        if name not in args.systems or done(name):
            continue
        started = time.time()
        # Untrained, so K does not matter, nor the seed where it drew the same types (N = all
        # the types): reuse a run of this seed at another K, or of another seed on these types.
        key, any_seed = run_key(args, name, k, seed), run_key(args, name, k, None)
        for path in sorted(runs.glob(f"{name}_k*_seed*-*.json")):
            other = srsly.read_json(path)
            if other["key"] == key or (other.get("key_any_seed") == any_seed
                                       and other["types"] == types):
                other.pop("seconds", None)
                save(name, {**other, "reused_from": path.name, "key_any_seed": any_seed},
                     started)
                break
        if not done(name):
            out = work / name
            spacy_cli("assemble", args.config, out, "--paths.labels", labels_path,
                      *overrides_of(args, name),
                      threads=threads)
            save(name, {**score_pipeline(spacy.load(out), test, types),
                        "key_any_seed": any_seed}, started)
    return written


def summarise(args, names, settings) -> dict:
    metrics, shots, seeds = args.metrics, args.shots, args.seeds
    systems = {}
    for name in names:
        by_k = {}
        for k in shots:
            paths = [run_path(args, name, k, s) for s in seeds]
            found = [srsly.read_json(p) for p in paths if p.exists()]
            if not found:
                continue
            by_k[str(k)] = cell({r["seed"]: seed_record(r) for r in found})
        if by_k:
            systems[name] = system_entry(by_k)
    result = {"systems": systems, **settings}
    write_summary(metrics, result)
    plot_training(args.work, shots, seeds, names, metrics / "training.png")  # the systems with a training log
    return result


def override_args(overrides: str) -> list:
    """'--a.b=1,--c.d=x' -> ['--a.b', '1', '--c.d', 'x']: the config overrides of a --variant
    (also read by scripts/train_cost.py)."""
    args = []
    for item in overrides.split(","):
        key, _, val = item.partition("=")
        args += [key, val]
    return args


def parse_variants(values):
    variants = {}
    for value in values:
        name, _, overrides = value.partition("=")
        if not name or not overrides or name in SYSTEMS:
            raise SystemExit(f"--variant wants NAME=--section.key=value,... (got {value!r}); "
                             f"NAME may not be one of {SYSTEMS}.")
        variants[name] = override_args(overrides)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=configs.resolve,
                        help="the CLLMFS training config: a file, or a shipped config's name")
    parser.add_argument("ner_config", type=Path, help="spaCy's ner config")
    parser.add_argument("corpus", type=Path, help="holds train.spacy and test.spacy")
    parser.add_argument("work", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("--ways", type=int, required=True)
    parser.add_argument("--shots", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--split", default="test", choices=("test", "dev"),
                        help="score on test, or on dev to choose settings (sweeps)")
    parser.add_argument("--test-limit", type=int, default=0, help="0: the whole split")
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=SYSTEMS,
                        help="none (--systems alone): only the --variant ones")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--dev", type=Path, default=None,
                        help="a dev corpus to pick the LLM checkpoints with (default: none)")
    parser.add_argument("--icl-max-new-tokens", type=int, default=96)
    parser.add_argument("--blank-config", type=Path, default=None,
                        help="cllmfs_blank's config: the recipe from a blank adapter")
    parser.add_argument("--descriptions", type=Path, default=None,
                        help="JSON {type: one-line description} for the LLM systems")
    parser.add_argument("--epochs", type=float, default=10.0,
                        help="epochs over the shots for the scheduled systems (cllmfs, ablations)")
    parser.add_argument("--warmup", type=float, default=0.1,
                        help="share of the steps with a rising learning rate")
    parser.add_argument("--rehearsal", type=int, default=0,
                        help="source-corpus sentences added to the shots of the scheduled systems")
    parser.add_argument("--rehearsal-corpus", type=Path, default=None,
                        help="a DocBin of convert_source.py (e.g. corpus/source/train.spacy)")
    parser.add_argument("--own-text", type=int, default=0,
                        help="instead of --rehearsal: this many sentences of the text to "
                             "process (not scored, not shots), labelled by the starting adapter")
    parser.add_argument("--own-text-split", default="scored",
                        choices=("scored", "train", "dev", "test"),
                        help="the split --own-text draws from (default: the scored one)")
    parser.add_argument("--own-text-min-recall", type=float, default=convention.MIN_RECALL,
                        help="use the own text only where the starting adapter finds this share "
                             "of the shots' entities, else --rehearsal's (0: always)")
    parser.add_argument("--if-rejected", default=convention.IF_REJECTED[0],
                        choices=convention.IF_REJECTED,
                        help="where --own-text is not used (the check): the shots alone, or "
                             "--rehearsal's source sentences")
    parser.add_argument("--fallback", default=fallback.SWITCH[0], choices=fallback.SWITCH,
                        help="where the own text was used: the per-type fallback to the "
                             "starting adapter (on), or none (off, the recipe)")
    parser.add_argument("--gpu-id", type=int, default=-1,
                        help="train and score the LLM systems on this GPU (-1: CPU)")
    parser.add_argument("--jobs", type=int, default=1, help="K-shot sets run side by side")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per K-shot set (default: the CPUs over --jobs)")
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    args.variants = parse_variants(args.variant)
    if args.own_text_split == "scored":
        args.own_text_split = args.split
    if not args.systems and not args.variants:
        raise SystemExit("No system to run: give --systems NAME ... or a --variant.")
    if args.own_text and args.rehearsal and not args.own_text_min_recall:
        raise SystemExit("--own-text with --own-text-min-recall 0 always takes the place of "
                         "--rehearsal: give one of them.")
    started = time.time()
    units = [(k, seed) for k in args.shots for seed in args.seeds]
    if not args.summarise_only:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        if args.jobs == 1:
            for k, seed in units:
                run_unit(args, k, seed, threads)
        else:
            with ProcessPoolExecutor(args.jobs) as pool:
                futures = [pool.submit(run_unit, args, k, s, threads) for k, s in units]
                for future in futures:
                    future.result()
    test = read_docs(args.corpus / f"{args.split}.spacy", spacy.blank("en").vocab)
    settings = {
        "data": args.corpus.name, "split": args.split, "ways": args.ways, "shots": args.shots, "seeds": args.seeds,
        "test_docs": len(fixed_subset(test, args.test_limit)), "test_total": len(test),
        "test_subset": "all" if not args.test_limit or args.test_limit >= len(test) else
        f"{args.test_limit} sentences drawn with random.Random(0).sample, in corpus order",
        "config": configs.name_of(args.config), "blank_config": str(args.blank_config),
        "descriptions": str(args.descriptions), "epochs": args.epochs, "warmup": args.warmup,
        "rehearsal": args.rehearsal, "rehearsal_corpus": str(args.rehearsal_corpus),
        "own_text": args.own_text, "own_text_split": args.own_text_split,
        "own_text_min_recall": args.own_text_min_recall if args.own_text else None,
        "if_rejected": args.if_rejected if args.own_text else None,
        "fallback": args.fallback if args.own_text else None,
        "gpu_id": args.gpu_id,
        "checkpoint": "model-best" if args.dev else "model-last",
        "variants": {name: " ".join(map(str, o)) for name, o in args.variants.items()},
    }
    names = [s for s in SYSTEMS if s in args.systems] + list(args.variants)
    result = summarise(args, names, settings)
    if not args.summarise_only:
        print(f"compare: {time.time() - started:.0f} s")
    print((args.metrics / "compare.md").read_text(encoding="utf8"))
    json.dumps(result)


if __name__ == "__main__":
    main()
