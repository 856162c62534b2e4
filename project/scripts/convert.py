"""Convert each domain's CoNLL/IOB files (train/dev/test) to .spacy with spaCy's `ner`
converter, the one `python -m spacy convert FILE OUT -c ner -n 1` runs.

Usage: python scripts/convert.py ASSETS_DIR CORPUS_DIR --domains news recipes
Reads ASSETS_DIR/<domain>/<split>.iob (or .conll), writes CORPUS_DIR/<domain>/<split>.spacy,
one doc per sentence. `-DOCSTART-` lines (GUM's, between documents) are left out: the converter
would otherwise read each as a one-token sentence.
"""
import argparse
import importlib
import tempfile
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
            with tempfile.TemporaryDirectory() as tmp:
                convert(without_docstart(found[0], Path(tmp)), out, file_type="spacy",
                        converter="ner", n_sents=1, silent=False)


def without_docstart(path: Path, tmp: Path) -> Path:
    """`path`, or a copy in `tmp` under the same name without its -DOCSTART- lines and the
    blank line that follows each."""
    lines = path.read_text(encoding="utf8").splitlines()
    if not any(line.startswith("-DOCSTART-") for line in lines):
        return path
    kept, skip_blank = [], False
    for line in lines:
        if line.startswith("-DOCSTART-"):
            skip_blank = True
            continue
        if skip_blank and not line.strip():
            skip_blank = False
            continue
        skip_blank = False
        kept.append(line)
    copy = tmp / path.name
    copy.write_text("\n".join(kept) + "\n", encoding="utf8")
    return copy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assets", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--domains", nargs="+", required=True)
    args = parser.parse_args()
    main(args.assets, args.corpus, args.domains)
