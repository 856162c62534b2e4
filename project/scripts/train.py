"""Train one adapter per domain and seed with `python -m spacy train`, on that seed's
K-shot set; with --untrained, build the untrained pipeline for the same labels with
`python -m spacy assemble` instead (the zero-shot baseline).

Usage: python scripts/train.py CONFIG CORPUS_DIR SHOTS_DIR OUTPUT_DIR --domains news
       --seeds 1 2 [--gpu-id 0] [--require-gpu] [--untrained] [any spacy config overrides, e.g.
       --training.max_steps 20]
Writes OUTPUT_DIR/<domain>/seed<S>/ (spacy train's model-best and model-last, or with
--untrained the assembled pipeline itself).
"""
import argparse
import subprocess
import sys
from pathlib import Path

from spacy_cllmfs import configs


def main(config, corpus, shots_dir, output, domains, seeds, gpu_id, untrained, overrides) -> None:
    print(f"config: {config}", flush=True)
    for domain in domains:
        for seed in seeds:
            shots = shots_dir / domain
            out = output / domain / f"seed{seed}"
            labels = ["--paths.labels", str(shots / f"seed{seed}.labels.json")]
            if untrained:
                command = ["assemble", str(config), str(out), *labels]
            else:
                command = [
                    "train", str(config), "--output", str(out),
                    "--paths.train", str(shots / f"seed{seed}.spacy"),
                    "--paths.dev", str(corpus / domain / "dev.spacy"),
                    *labels, "--system.seed", str(seed), "--gpu-id", str(gpu_id),
                ]
            print(f"== {domain}, seed {seed}: spacy {command[0]}", flush=True)
            subprocess.run([sys.executable, "-m", "spacy", *command, *overrides], check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=configs.resolve,
                        help="a config file, or a shipped config's name (fewshot)")
    parser.add_argument("corpus", type=Path)
    parser.add_argument("shots_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--domains", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--untrained", action="store_true")
    parser.add_argument("--require-gpu", action="store_true",
                        help="refuse to run on the CPU (the GPU commands)")
    args, overrides = parser.parse_known_args()
    if args.require_gpu and args.gpu_id < 0:
        raise SystemExit("This command trains on a GPU: add --vars.gpu_id 0 (the GPU's index).")
    overrides = [o for o in overrides if o != "--"]
    main(args.config, args.corpus, args.shots_dir, args.output, args.domains, args.seeds, args.gpu_id,
         args.untrained, overrides)
