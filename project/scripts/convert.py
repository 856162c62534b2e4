"""Convert each domain's CoNLL/IOB files (train/dev/test) to .spacy with spaCy's `ner`
converter, the one `python -m spacy convert FILE OUT -c ner -n 1` runs.

Usage: python scripts/convert.py ASSETS_DIR CORPUS_DIR --domains news recipes
Reads ASSETS_DIR/<domain>/<split>.iob (or .conll), writes CORPUS_DIR/<domain>/<split>.spacy.
"""
import argparse
import importlib
from pathlib import Path

convert = importlib.import_module("spacy.cli.convert").convert
SPLITS = ("train", "dev", "test")


def main(assets: Path, corpus: Path, domains) -> None:
    for domain in domains:
        out = corpus / domain
        out.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            found = [assets / domain / f"{split}{ext}" for ext in (".iob", ".conll")]
            found = [path for path in found if path.exists()]
            if not found:
                raise SystemExit(f"No {split}.iob or {split}.conll in {assets / domain}.")
            convert(found[0], out, file_type="spacy", converter="ner", n_sents=1, silent=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assets", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--domains", nargs="+", required=True)
    args = parser.parse_args()
    main(args.assets, args.corpus, args.domains)
