"""One comparison table and plot from several summaries of scripts/compare.py.

A full comparison (8 systems x 2 K x 3 seeds) takes longer than one machine keeps its run
files, so its cells were run by several compare.py commands, each writing its own
METRICS_DIR/compare.json. This script puts them together, and only summaries of the same
comparison: every setting but the systems, shots and seeds (data, split, ways, test subset,
configs, descriptions, schedule, rehearsal, device, checkpoint) must be the same in all of
them, or it stops and names the setting. The settings of the recipe that trains on the shots
(RECIPE: rehearsal, own text, schedule) need only agree between the summaries that hold a system
trained with it (cllmfs, its ablations, variants), so that a table whose recipe changed keeps
the cells of the systems the change does not touch: SUMMARY.json:SYSTEM,SYSTEM takes only those
systems from a summary (e.g. the baselines from the published table, the recipe's rows from new
runs).

For each system and K it pools the seeds of every summary whose cell keeps them one by one
(by_seed; a seed run twice counts once, from the later file), so that one cell's seeds can
come from several machines. Where a cell lacks by_seed (summaries written before it was
kept), it takes the cell with the most seeds; of two with as many, the one of the later
file. Writes OUT_DIR/compare.json (each cell says which files it came from), compare.md and
compare.png, as compare.py does (the training curves stay with each summary). A merged
summary can be merged again, each seed keeping the file it came from: merging the published
results/gum/compare.json with a new run's summary adds that run's seeds and cells to it.

Usage: python scripts/merge_compare.py OUT_DIR SUMMARY.json[:SYSTEM,...] [SUMMARY.json ...]
"""
import argparse
from pathlib import Path

import srsly

from compare_report import SYSTEMS, cell, system_entry, write_summary

# what may differ between the summaries; a merged summary can be merged again (merged_from)
MERGED = ("systems", "shots", "seeds", "variants", "merged_from")
# what only the systems trained with the recipe (compare.py's scheduled systems) depend on
RECIPE = ("epochs", "warmup", "rehearsal", "rehearsal_corpus", "own_text", "own_text_split",
          "own_text_min_recall", "if_rejected", "fallback")
SCHEDULED = ("cllmfs", "no_contrastive", "no_noise")


def scheduled(summary) -> bool:
    """Whether the summary holds a system trained with the recipe."""
    return any(s in SCHEDULED or s in summary.get("variants", {}) for s in summary["systems"])


def only(summary, systems):
    """The summary with only `systems` (and their variants); a system it lacks is an error."""
    missing = [s for s in systems if s not in summary["systems"]]
    if missing:
        raise SystemExit(f"Not in the summary: {', '.join(missing)} (it holds "
                         f"{', '.join(summary['systems'])}).")
    variants = {k: v for k, v in summary.get("variants", {}).items() if k in systems}
    return {**summary, "systems": {s: summary["systems"][s] for s in systems},
            "variants": variants}


def merge(summaries):
    """[(name, compare.json contents)] -> one compare.json of the same form."""
    if not summaries:
        raise SystemExit("Give at least one compare.json to merge.")
    first_name, first = summaries[0]
    trained = [(name, summary) for name, summary in summaries if scheduled(summary)]
    for group, keys in ((summaries, None), (trained, RECIPE)):
        for name, summary in group[1:]:
            base_name, base = group[0]
            for key in sorted(set(base) | set(summary)):
                compared = key in keys if keys else key not in MERGED + RECIPE
                if compared and base.get(key) != summary.get(key):
                    raise SystemExit(
                        f"{name} and {base_name} are not the same comparison: {key!r} is "
                        f"{summary.get(key)!r} against {base.get(key)!r}."
                    )
    found = {}  # (system, K) -> [(cell, source)], in file order
    for name, summary in summaries:
        for system, data in summary["systems"].items():
            for k, one in data["shots"].items():
                found.setdefault((system, k), []).append((one, name))
    cells = {key: pooled(held) for key, held in found.items()}
    present = {system for system, _ in cells}
    order = [s for s in SYSTEMS if s in present] + sorted(present - set(SYSTEMS))
    shots = sorted({int(k) for _, k in cells})
    systems = {}
    for system in order:
        by_k = {str(k): cells[(system, str(k))] for k in shots if (system, str(k)) in cells}
        systems[system] = system_entry(by_k)
    seeds = sorted({s for one in cells.values() for s in one["seeds"]})
    variants = {}
    for _, summary in summaries:
        variants.update(summary.get("variants", {}))
    settings = {key: value for key, value in first.items() if key not in MERGED + RECIPE}
    recipe = trained[0][1] if trained else first  # the recipe of the trained rows
    settings.update({key: recipe[key] for key in RECIPE if key in recipe})
    return {"systems": systems, **settings, "shots": shots, "seeds": seeds,
            "variants": variants, "merged_from": [name for name, _ in summaries]}


def pooled(held) -> dict:
    """One cell from a system's cells at one K [(cell, source)], in file order."""
    if all("by_seed" in one for one, _ in held):
        by_seed = {}
        for one, name in held:
            for seed, record in one["by_seed"].items():  # a merged summary's seeds keep their file
                by_seed[seed] = {**record, "from": record.get("from", name)}
        merged = cell(by_seed)
        sources = [record["from"] for record in merged["by_seed"].values()]
        return {**merged, "from": list(dict.fromkeys(sources))}  # in seed order, once each
    best, name = held[0]
    for one, other in held[1:]:
        if len(one["seeds"]) >= len(best["seeds"]):
            best, name = one, other
    return {**best, "from": best.get("from", [name])}


def read(argument: str):
    """(name, summary) of FILE or FILE:SYSTEM,SYSTEM (only those systems)."""
    path, systems = argument, None
    if not Path(argument).is_file() and ":" in argument:
        path, listed = argument.rsplit(":", 1)
        systems = [s for s in listed.split(",") if s]
    if not Path(path).is_file():
        raise SystemExit(f"No summary at {path}.")
    summary = srsly.read_json(path)
    return (path, only(summary, systems) if systems else summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for compare.json, .md and .png")
    parser.add_argument("summaries", nargs="+",
                        help="compare.json files, in order; FILE:SYSTEM,SYSTEM takes only those")
    args = parser.parse_args()
    result = merge([read(argument) for argument in args.summaries])
    write_summary(args.out, result)
    print((args.out / "compare.md").read_text(encoding="utf8"))


if __name__ == "__main__":
    main()
