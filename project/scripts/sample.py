"""Draw N-way K-shot training sets from each domain's train.spacy, one per seed, with
Few-NERD's greedy sampler (spacy_cllmfs.fewshot): every type ends with K to 2K mentions.

Usage: python scripts/sample.py CORPUS_DIR SHOTS_DIR --domains news --ways 3 --shots 5 --seeds 1 2
Reads CORPUS_DIR/<domain>/train.spacy; writes SHOTS_DIR/<domain>/seed<S>.spacy and
seed<S>.labels.json (the N types).
"""
import argparse
from collections import Counter
from pathlib import Path

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.fewshot import sample_episode


def main(corpus: Path, shots_dir: Path, domains, ways: int, shots: int, seeds) -> None:
    vocab = spacy.blank("en").vocab
    for domain in domains:
        docs = read_docs(corpus / domain / "train.spacy", vocab)
        out = shots_dir / domain
        out.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            types, indices, walk = sample_episode(docs, ways, shots, seed)
            chosen = [docs[i] for i in indices]
            DocBin(docs=chosen, store_user_data=True).to_disk(out / f"seed{seed}.spacy")
            srsly.write_json(out / f"seed{seed}.labels.json", types)
            counts = Counter(e.label_ for doc in chosen for e in doc.ents)
            shown = ", ".join(f"{t}: {counts[t]}" for t in types)
            again = f" (sampler walk {walk})" if walk > 1 else ""
            print(f"{domain} seed {seed}: {len(chosen)} sentences, mentions {shown}{again}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("shots_dir", type=Path)
    parser.add_argument("--domains", nargs="+", required=True)
    parser.add_argument("--ways", type=int, required=True, help="N, the number of types")
    parser.add_argument("--shots", type=int, required=True, help="K, mentions per type")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    args = parser.parse_args()
    main(args.corpus, args.shots_dir, args.domains, args.ways, args.shots, args.seeds)
