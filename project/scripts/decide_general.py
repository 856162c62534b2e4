"""Should a newly trained general adapter replace the shipped one? The rule of issue 34, on two
results files of scripts/evaluate_general.py (the same split, tasks source, wnut17 and gum):

- the new adapter must be better on the mean of the unseen targets: WNUT-17 (the mean of its
  3-way seeds) and GUM (ten types);
- and no more than 1 F1 worse on the mean of the old five source corpora's held-out halves
  (v1's corpora: wikigold, sec, anem, uner, re3d).

Prints a table (F1 x 100 per task, both adapters, the difference) and the decision with its
reason; writes them to OUTPUT.json. Decide on dev; report test.

Usage: python scripts/decide_general.py CANDIDATE.json SHIPPED.json OUTPUT.json
"""
import argparse
from pathlib import Path
from statistics import mean

import srsly

OLD_FIVE = ("wikigold", "sec", "anem", "uner", "re3d")
MAX_LOSS_OLD_FIVE = 1.0  # F1 points


def f1(results: dict, key: str) -> float:
    return 100 * results[key]["f1"]


def unseen(results: dict) -> float:
    """The mean of WNUT-17 (its seeds' mean) and GUM."""
    seeds = [k for k in results if k.startswith("wnut17/seed")]
    if not seeds or "gum" not in results:
        raise SystemExit("Both files need the wnut17 and gum tasks (evaluate_general.py "
                         "--tasks wnut17 gum).")
    return mean([mean(f1(results, k) for k in seeds), f1(results, "gum")])


def old_five(results: dict) -> float:
    missing = [c for c in OLD_FIVE if f"source/{c}" not in results]
    if missing:
        raise SystemExit(f"No held-out score for {', '.join(missing)} (evaluate_general.py "
                         f"--tasks source, with corpus/source holding them).")
    return mean(f1(results, f"source/{c}") for c in OLD_FIVE)


def decide(candidate: dict, shipped: dict) -> dict:
    if candidate.get("split") != shipped.get("split"):
        raise SystemExit(f"The files score different splits: {candidate.get('split')} and "
                         f"{shipped.get('split')}.")
    gain = unseen(candidate) - unseen(shipped)
    loss = old_five(shipped) - old_five(candidate)
    ship = gain > 0 and loss <= MAX_LOSS_OLD_FIVE
    if ship:
        reason = (f"better on the unseen targets by {gain:.1f} F1, and {max(loss, 0):.1f} F1 "
                  f"worse at most on the old five")
    elif gain <= 0:
        reason = f"not better on the unseen targets ({gain:+.1f} F1)"
    else:
        reason = (f"{loss:.1f} F1 worse on the old five (the limit is {MAX_LOSS_OLD_FIVE}), "
                  f"though {gain:.1f} F1 better on the unseen targets")
    tasks = [k for k in candidate if isinstance(candidate[k], dict) and "f1" in candidate[k]
             and k in shipped]
    table = {k: {"candidate": f1(candidate, k), "shipped": f1(shipped, k),
                 "difference": f1(candidate, k) - f1(shipped, k)} for k in sorted(tasks)}
    return {"split": candidate["split"], "ship": ship, "reason": reason,
            "unseen": {"candidate": unseen(candidate), "shipped": unseen(shipped)},
            "old_five": {"candidate": old_five(candidate), "shipped": old_five(shipped)},
            "tasks": table}


def main(candidate: Path, shipped: Path, output: Path) -> dict:
    result = decide(srsly.read_json(candidate), srsly.read_json(shipped))
    print(f"| task ({result['split']}) | candidate | shipped | difference |")
    print("|---|---:|---:|---:|")
    for task, row in result["tasks"].items():
        print(f"| {task} | {row['candidate']:.1f} | {row['shipped']:.1f} | "
              f"{row['difference']:+.1f} |")
    print(("Ship it: " if result["ship"] else "Keep the shipped adapter: ") + result["reason"])
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidate", type=Path)
    parser.add_argument("shipped", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    main(args.candidate, args.shipped, args.output)
