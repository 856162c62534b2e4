"""Copy the current results a user should see from metrics/ (which git ignores and commands
write) into results/ (committed): the comparison tables and plots, the document benchmark, the
latest speed benchmark per device (and benchmark_gpu.py's runs, one per device), the general
adapter's card.

Usage: python scripts/publish.py [METRICS_DIR] [RESULTS_DIR]
Copies only what exists and says what it copied; nothing else is touched.
"""
import json
import shutil
import sys
from pathlib import Path

# metrics path -> results path
# The compare tables: compare-systems' default target at the top, one folder per target
# (compare-systems --vars.compare_metrics metrics/<target>).
COMPARE = {f"{folder}compare.{ext}": f"{folder}compare.{ext}"
           for folder in ("", "gum/", "wnut17/") for ext in ("json", "md", "png")}
FILES = {
    **COMPARE,
    "documents.json": "documents.json", "decode_memory.json": "decode_memory.json",
    "source/card.md": "source/card.md", "source/loss.png": "source/loss.png",
    "source/scores.json": "source/scores.json",
}


def main(metrics: Path, results: Path) -> list:
    copied = []
    for source, target in FILES.items():
        if (metrics / source).is_file():
            (results / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(metrics / source, results / target)
            copied.append(target)
    benchmark = metrics / "benchmark.json"
    if benchmark.is_file():  # the latest run per device: on a GPU under results/gpu/
        machine = json.loads(benchmark.read_text()).get("machine", "")
        target = "gpu/benchmark.json" if "device cuda" in machine else "benchmark.json"
        (results / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(benchmark, results / target)
        copied.append(target)
    for run in sorted((metrics / "gpu").glob("*.json")):  # benchmark_gpu.py: one per device
        (results / "gpu").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run, results / "gpu" / run.name)
        copied.append(f"gpu/{run.name}")
    print("published:", ", ".join(copied) or "nothing (run the commands that write metrics/)")
    return copied


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]] + [Path("metrics"), Path("results")][len(sys.argv) - 1:]
    main(args[0], args[1])
