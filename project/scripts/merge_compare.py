"""One comparison table and plot from several summaries of scripts/compare.py.

A full comparison (8 systems x 2 K x 3 seeds) takes longer than one machine keeps its run
files, so its cells were run by several compare.py commands, each writing its own
METRICS_DIR/compare.json. This script puts them together, and only summaries of the same
comparison: every setting but the systems, shots and seeds (data, split, ways, test subset,
configs, descriptions, schedule, rehearsal, device, checkpoint) must be the same in all of
them, or it stops and names the setting.

For each system and K it pools the seeds of every summary whose cell keeps them one by one
(by_seed; a seed run twice counts once, from the later file), so that one cell's seeds can
come from several machines. Where a cell lacks by_seed (summaries written before it was
kept), it takes the cell with the most seeds; of two with as many, the one of the later
file. Writes OUT_DIR/compare.json (each cell says which files it came from), compare.md and
compare.png, as compare.py does (the training curves stay with each summary). A merged
summary can be merged again, each seed keeping the file it came from: merging the published
results/gum/compare.json with a new run's summary adds that run's seeds and cells to it.

Usage: python scripts/merge_compare.py OUT_DIR SUMMARY.json [SUMMARY.json ...]
"""
import argparse
from pathlib import Path

import srsly

from compare_report import SYSTEMS, cell, system_entry, write_summary

# what may differ between the summaries; a merged summary can be merged again (merged_from)
MERGED = ("systems", "shots", "seeds", "variants", "merged_from")


def merge(summaries):
    """[(name, compare.json contents)] -> one compare.json of the same form."""
    if not summaries:
        raise SystemExit("Give at least one compare.json to merge.")
    first_name, first = summaries[0]
    for name, summary in summaries[1:]:
        for key in sorted(set(first) | set(summary)):
            if key not in MERGED and first.get(key) != summary.get(key):
                raise SystemExit(
                    f"{name} and {first_name} are not the same comparison: {key!r} is "
                    f"{summary.get(key)!r} against {first.get(key)!r}."
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
    settings = {key: value for key, value in first.items() if key not in MERGED}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for compare.json, .md and .png")
    parser.add_argument("summaries", type=Path, nargs="+", help="compare.json files, in order")
    args = parser.parse_args()
    result = merge([(str(path), srsly.read_json(path)) for path in args.summaries])
    write_summary(args.out, result)
    print((args.out / "compare.md").read_text(encoding="utf8"))


if __name__ == "__main__":
    main()
