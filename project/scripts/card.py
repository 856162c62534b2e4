"""Write a general adapter's training card: data and row counts, steps, time, the loss curve
(PNG) and the zero-shot scores, as card.md and loss.png in OUT_DIR, and cllmfs.json (what the
package reads: the template, the base model, the data and its licences) into the adapter folder.

The training log is either spacy train's (spacy_cllmfs/training_log.py: losses summed since the last
evaluation) or scripts/train_rows.py's (train_log.jsonl and summary.json: a loss every N steps).

Usage: python scripts/card.py ADAPTER_DIR OUT_DIR --log LOG.jsonl --scores SCORES.json
         --template ner.v1 --name general-ner.v1 [--summary summary.json] [--counts counts.json]
"""
import argparse
import json
from pathlib import Path

import srsly

LICENCES = {
    "wikigold": "CC-BY 4.0 (Balasuriya et al., 2009)",
    "sec": "CC-BY 3.0 (Salinas Alvarado et al., 2015)",
    "anem": "annotations CC-BY-SA 3.0, texts as NLM states (Ohta et al., 2012)",
    "uner": "CC BY-SA 4.0 (UNER English-EWT; Mayhew et al., 2024)",
    "re3d": "per source: CC-BY 3.0 AU, public domain, OGL v3, CC-BY-SA 3.0 (re3d, Dstl)",
}


def curve(log_path: Path):
    """(steps, mean loss per step) from either training log. spacy train's log has a line per
    update of the component ("update"): those are used when present (with
    accumulate_gradient, an update is a micro-batch)."""
    records = list(srsly.read_jsonl(log_path))
    updates = [r for r in records if "update" in r]
    if updates:
        return [r["update"] for r in updates], [r["loss"] for r in updates]
    steps, losses, last = [], [], 0
    for record in records:
        if "losses" in record:  # spacy train: summed since the previous evaluation
            span = max(1, record["step"] - last)
            last = record["step"]
            if record["step"] == 0:
                continue
            losses.append(sum(record["losses"].values()) / span)
        else:
            losses.append(record["loss"])
        steps.append(record["step"])
    return steps, losses


def plot(steps, losses, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses)
    ax.set_xlabel("step (update of the component, with accumulate_gradient a micro-batch)")
    ax.set_ylabel("loss (cross-entropy + 0.1 x InfoNCE)")
    ax.set_title(title)
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args) -> None:
    steps, losses = curve(args.log)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(steps, losses, args.out / "loss.png", f"{args.name}: training loss")
    # optimizer steps: spacy train's evaluation lines count them (the curve may count updates)
    records = list(srsly.read_jsonl(args.log))
    evaluated = [r for r in records if "step" in r]
    last_step = evaluated[-1]["step"] if evaluated else (steps[-1] if steps else 0)
    # spacy train's lines: seconds since the start of training; the update lines: rows seen
    logged = {}
    if evaluated and "seconds" in evaluated[-1]:
        logged["seconds"] = evaluated[-1]["seconds"]
    updates = [r for r in records if "update" in r]
    if updates:
        tail = updates[-200:]
        logged.update({
            "updates": len(updates), "rows": sum(r.get("rows", 0) for r in updates),
            "answer_rate_last_200_updates": round(
                sum(r["answer_rate"] for r in tail) / len(tail), 3),
            "answer_rate_gold_last_200_updates": round(
                sum(r["answer_rate_gold"] for r in tail) / len(tail), 3),
        })
    summary = srsly.read_json(args.summary) if args.summary else {}
    counts = srsly.read_json(args.counts) if args.counts else {}
    scores = srsly.read_json(args.scores)
    identity = json.loads((args.adapter / "base_model.json").read_text())
    tasks = {k: v for k, v in scores.items() if isinstance(v, dict) and "f1" in v}
    card = {
        "name": args.name, "template": args.template, "base_model": identity,
        "data": {c: {**counts.get(c, {}), "licence": LICENCES[c]} for c in LICENCES
                 if not counts or c in counts},
        "training": {**summary, **logged, "steps": last_step,
                     "final_loss": round(losses[-1], 4) if losses else None},
        "zero_shot": {k: {"f1": round(100 * v["f1"], 1), "docs": v["docs"],
                          "docs_per_second": v["docs_per_second"]} for k, v in tasks.items()},
        "scores_split": scores.get("split"),
    }
    (args.adapter / "cllmfs.json").write_text(json.dumps(card, indent=2) + "\n")
    lines = [f"# {args.name}: training card", "",
             f"Base model {identity['name']} (fingerprint {identity['fingerprint']}); "
             f"template {args.template}.", "", "## Data", "",
             "| corpus | train sentences | held-out | types | licence |", "|---|---|---|---|---|"]
    for corpus, info in card["data"].items():
        lines.append(f"| {corpus} | {info.get('train', '')} | {info.get('heldout', '')} | "
                     f"{len(info.get('types', []))} | {info['licence']} |")
    lines += ["", "## Training", "", "```", json.dumps(card["training"], indent=2), "```", "",
              "![loss](loss.png)", "", f"## Zero-shot scores ({card['scores_split']} split)", "",
              "| task | strict F1 | docs | docs/s |", "|---|---|---|---|"]
    for task, value in card["zero_shot"].items():
        lines.append(f"| {task} | {value['f1']} | {value['docs']} | {value['docs_per_second']} |")
    (args.out / "card.md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {args.out / 'card.md'}, {args.out / 'loss.png'} and {args.adapter / 'cllmfs.json'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapter", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--scores", type=Path, required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--name", default="general-ner.v1")
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--counts", type=Path)
    main(parser.parse_args())
