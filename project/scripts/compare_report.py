"""The compare workflow's reporting: the summary table, its plot and the training curves,
from the runs that scripts/compare.py wrote (merge_compare.py uses the same writers).
"""
from pathlib import Path

import srsly

from card import curve  # scripts/card.py: the loss per update from a training log
from spacy_cllmfs.scoring import aggregate

# The systems, in the order of the table.
SYSTEMS = ("cllmfs", "cllmfs_blank", "no_contrastive", "no_noise", "general_zero_shot",
           "spacy_ner", "spacy_llm_icl", "zero_shot")


def training_summary(log_path: Path) -> dict:
    """From the training log (scripts/training_log.py): the number of updates, the first and
    last losses, and the answer rates (model and gold) over the last tenth of the updates."""
    if not log_path.exists():
        return {}
    updates = [r for r in srsly.read_jsonl(log_path) if "update" in r]
    if not updates:
        return {}
    tail = updates[-max(1, len(updates) // 10):]
    return {"updates": len(updates), "first_loss": updates[0]["loss"],
            "last_loss": updates[-1]["loss"],
            "answer_rate": sum(r.get("answer_rate", 0) for r in tail) / len(tail),
            "answer_rate_gold": sum(r.get("answer_rate_gold", 0) for r in tail) / len(tail)}


SEED_KEYS = ("precision", "recall", "f1", "support", "seconds", "sampler_walk")


def seed_record(run: dict) -> dict:
    """What a summary keeps of one seed's run, enough to pool seeds from several summaries
    (merge_compare.py): its scores, time and which sampler walk drew its shots."""
    return {key: run[key] for key in SEED_KEYS if key in run}


def cell(by_seed: dict) -> dict:
    """A table cell from {seed: seed_record}: the mean and sample std over the seeds."""
    seeds = sorted(by_seed, key=int)
    runs = [{**by_seed[s], "per_type": {}} for s in seeds]
    summary = aggregate(runs)
    return {"f1": summary["f1"], "f1_std": summary["f1_std"],
            "precision": summary["precision"], "recall": summary["recall"],
            "seeds": [int(s) for s in seeds],
            "seconds": round(sum(r.get("seconds", 0) for r in runs), 1),
            "by_seed": {str(s): by_seed[s] for s in seeds}}


def system_entry(by_k: dict) -> dict:
    """A system's summary from its cells by K: the top-level f1 / f1_std are the smallest K's."""
    first = by_k[min(by_k, key=int)]
    return {"f1": first["f1"], "f1_std": first["f1_std"], "shots": by_k}


def write_summary(metrics: Path, result: dict) -> None:
    """METRICS_DIR/compare.json, compare.md (the table) and compare.png (the plot)."""
    metrics.mkdir(parents=True, exist_ok=True)
    srsly.write_json(metrics / "compare.json", result)
    (metrics / "compare.md").write_text(table(result["systems"], result["shots"]),
                                        encoding="utf8")
    plot(result["systems"], result["shots"], metrics / "compare.png", result)


def table(systems: dict, shots) -> str:
    head = "| system | " + " | ".join(f"F1, K={k}" for k in shots) + " |"
    lines = [head, "|---|" + "---:|" * len(shots)]
    for name, data in systems.items():
        cells = []
        for k in shots:
            run = data["shots"].get(str(k))
            cells.append("—" if run is None else table_cell(run))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_cell(run: dict) -> str:
    """F1 with its spread over the seeds, or, for one seed, which seed (no spread to show)."""
    seeds = run["seeds"]
    spread = f" ± {100 * run['f1_std']:.1f}" if len(seeds) > 1 else ""
    which = f"{len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]} only"
    return (f"{100 * run['f1']:.1f}{spread} (P {100 * run['precision']:.1f}, "
            f"R {100 * run['recall']:.1f}; {which})")


def plot(systems: dict, shots, path: Path, settings: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(systems)
    width = 0.8 / max(len(shots), 1)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2, 4))
    for i, k in enumerate(shots):
        xs, ys, errs = [], [], []
        for j, name in enumerate(names):
            run = systems[name]["shots"].get(str(k))
            if run is not None:
                xs.append(j + (i - (len(shots) - 1) / 2) * width)
                ys.append(100 * run["f1"])
                errs.append(100 * run["f1_std"])
        bars = ax.bar(xs, ys, width, yerr=errs, capsize=3, label=f"K = {k}")
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("strict micro F1 (%), mean ± std over seeds")
    ax.set_title(f"{settings['data']}: {settings['ways']}-way K-shot, "
                 f"{settings['test_docs']} test sentences", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def smooth(values, share: float = 0.1):
    """Running mean over the last `share` of the values (at least 1): the per-update figures
    of a batch of two sentences are too noisy to read."""
    window = max(1, int(len(values) * share))
    means = []
    for i in range(len(values)):
        last = values[max(0, i + 1 - window): i + 1]
        means.append(sum(last) / len(last))
    return means


def plot_training(work: Path, shots, seeds, names, path: Path) -> bool:
    """Each trained system's per-update loss and answer rate (share of rows the adapter
    answers with an entity, and the gold share), running means over a tenth of the updates,
    one line per K and seed, from the training logs in WORK_DIR/k<K>/seed<S>/<system>/log.jsonl;
    False when there is no log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {name: [(k, s, work / f"k{k}" / f"seed{s}" / name / "log.jsonl")
                   for k in shots for s in seeds] for name in names}
    logs = {name: [x for x in found if x[2].exists()] for name, found in logs.items()}
    logs = {name: found for name, found in logs.items() if found}
    if not logs:
        return False
    fig, axes = plt.subplots(len(logs), 2, figsize=(10, 2.6 * len(logs)), squeeze=False)
    for (name, found), (loss_ax, rate_ax) in zip(logs.items(), axes):
        for k, seed, log in found:
            steps, losses = curve(log)
            loss_ax.plot(steps, smooth(losses), label=f"K={k} seed {seed}", linewidth=1)
            updates = [r for r in srsly.read_jsonl(log) if "answer_rate" in r]
            at = [r["update"] for r in updates]
            line, = rate_ax.plot(at, smooth([r["answer_rate"] for r in updates]), linewidth=1)
            rate_ax.plot(at, smooth([r["answer_rate_gold"] for r in updates]), linewidth=1,
                         linestyle=":", color=line.get_color())
        loss_ax.set_yscale("log")
        loss_ax.set_ylabel(f"{name}\nloss per update (running mean)")
        rate_ax.set_ylabel("answer rate (dotted: gold)")
        loss_ax.legend(fontsize=6)
    axes[-1][0].set_xlabel("update")
    axes[-1][1].set_xlabel("update")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
