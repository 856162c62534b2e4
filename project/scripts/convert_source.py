"""Convert the general NER corpora of the source stage to DocBins, with a held-out split.

Reads SOURCE_DIR laid out as `spacy project assets` (or ../shared/data/source) lays it out and
writes CORPUS_DIR/<corpus>/train.spacy, heldout.spacy and types.json (the types that corpus
annotates: a sentence is a true "none" only for those). Every doc carries its corpus's types,
with the descriptions and other names of configs/source_types.json, in
doc.user_data["cllmfs_types"], where the component's training rows read them. For `spacy
train`, CORPUS_DIR/train.spacy holds every corpus's training sentences (shuffled with a fixed
seed) and CORPUS_DIR/dev.spacy a small mixed sample of the held-out ones (--dev-per-corpus each,
a progress monitor; the held-out scores come from scripts/evaluate_general.py), and
CORPUS_DIR/labels.json every type with a description, for the component's labels
(counts.json: sentences and types per corpus). The formats
differ:

  wikigold   wikigold/wikigold.conll       `token TAG`, IOB1, -DOCSTART- between documents
  sec        sec-filings/{train,test}.conll `token POS - TAG`, IOB1, -DOCSTART- lines
  anem       anem/{train,test}.conll       `token start end TAG`, IOB2
  uner       uner-ewt/{dev,test}.iob2      `index<TAB>token<TAB>TAG<TAB>...`, `#` comment lines
  re3d       re3d/<source>/<id>.conll      `token<TAB>TAG`, IOB2, one file per document (as the
                                           assets lay it out; a source folder's all.conll, the
                                           documents joined in name order, is read instead when
                                           it is there, as in ../shared/data/source)

Tags become IOB2 (an I- tag that does not continue an entity of its type opens one). Held out:
the corpus's own test file where it has one (sec, anem, uner; uner trains on its dev file);
else every 5th document (wikigold) or every 5th sentence (re3d, whose files do not mark
documents).

The source2 corpora (--source2 DIR, ../shared/data/source2 or assets/source2; their formats
in that folder's README): multiconer (MultiCoNER II English; held out: its dev split),
bionlp13cg, bc5cdr, linnaeus, wlp, annoctr, stackoverflow (held out: their test splits),
litbank (nested layers flattened to the outermost spans; every 5th novel held out) and btc
(every 5th tweet held out). --cap N keeps at most N training sentences per corpus, rare types
first (`balanced`).

Usage: python scripts/convert_source.py SOURCE_DIR CORPUS_DIR [--corpora wikigold sec ...]
       [--types configs/source_types.json] [--source2 DIR] [--cap 2000]
"""
import argparse
import random
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import srsly
from spacy.tokens import Doc, DocBin

from spacy_cllmfs.rows import TYPES_KEY

Sentence = List[Tuple[str, str]]  # (token, tag)
# corpus -> (token column, tag column, comment prefix or None); tag column None: nested
# layers in every column after the token (litbank), flattened to the outermost spans
COLUMNS = {"wikigold": (0, -1, None), "sec": (0, -1, None), "anem": (0, -1, None),
           "uner": (1, 2, "#"), "re3d": (0, -1, None)}
# ../shared/data/source2 (or assets/source2): more corpora, many more types
COLUMNS2 = {"multiconer": (0, -1, "# id "), "bionlp13cg": (0, -1, None), "bc5cdr": (0, -1, None),
            "linnaeus": (0, -1, None), "wlp": (0, -1, None), "annoctr": (0, -1, None),
            "litbank": (0, None, None), "btc": (0, -1, None), "stackoverflow": (0, 1, None)}
DOCSTART = ("-DOCSTART-", "<DOCSTART>")
# StackOverflowNER's metadata lines, read as sentences that begin with these tokens
METADATA = ("Question_ID", "Question_URL", "Answer_to_Question_ID")


def read_documents(path: Path, corpus: str) -> List[List[Sentence]]:
    """Documents (split at -DOCSTART- lines; one document when there is none) of sentences."""
    token_col, tag_col, comment = {**COLUMNS, **COLUMNS2}[corpus]
    documents: List[List[Sentence]] = [[]]
    sentence: Sentence = []
    layers: List[List[str]] = []
    for line in path.read_text(encoding="utf8").splitlines() + [""]:
        if comment and line.startswith(comment):
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if not any(c.strip() for c in columns) or columns[0] in DOCSTART:
            if sentence:
                if tag_col is None:
                    sentence = list(zip([t for t, _ in sentence], outermost(layers)))
                documents[-1].append(sentence)
                sentence, layers = [], []
            if columns and columns[0] in DOCSTART and documents[-1]:
                documents.append([])
            continue
        if tag_col is None:
            layers.append([c for c in columns[token_col + 1:] if c.strip()])
            sentence.append((columns[token_col], "O"))
        elif columns[token_col].strip():  # BTC holds a few blank tokens: not words
            sentence.append((columns[token_col], columns[tag_col]))
    documents = [[s for s in doc if s[0][0] not in METADATA] for doc in documents]
    return [doc for doc in documents if doc]


def outermost(layers: List[List[str]]) -> List[str]:
    """IOB2 tags of the spans of nested layers (one list of tags per token) that no other
    span contains: the flat, outermost reading."""
    spans = set()
    for layer in range(max((len(tags) for tags in layers), default=0)):
        tags = to_iob2([tags[layer] if layer < len(tags) else "O" for tags in layers])
        start = None
        for i, tag in enumerate(tags + ["O"]):
            if start is not None and not tag.startswith("I-"):
                spans.add((start, i, tags[start][2:]))
                start = None
            if tag.startswith("B-"):
                start = i
    out = ["O"] * len(layers)
    for start, end, label in sorted(spans, key=lambda s: (s[0], -s[1])):
        if any(span != (start, end, label) and span[0] <= start and end <= span[1]
               for span in spans) or out[start] != "O":
            continue
        out[start:end] = ["B-" + label] + ["I-" + label] * (end - start - 1)
    return out


def to_iob2(tags: List[str]) -> List[str]:
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = out[i - 1] if i else "O"
            if previous == "O" or previous[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def to_doc(vocab, sentence: Sentence) -> Doc:
    words = [token for token, _ in sentence]
    return Doc(vocab, words=words, ents=to_iob2([tag for _, tag in sentence]))


def splits(source: Path, corpus: str) -> Tuple[List[Sentence], List[Sentence]]:
    """(train, held-out) sentences of one corpus."""
    def sentences(path):
        return [s for doc in read_documents(path, corpus) for s in doc]

    if corpus in COLUMNS2:
        return splits2(source, corpus)
    if corpus == "sec":
        return sentences(source / "sec-filings/train.conll"), sentences(source / "sec-filings/test.conll")
    if corpus == "anem":
        return sentences(source / "anem/train.conll"), sentences(source / "anem/test.conll")
    if corpus == "uner":
        return sentences(source / "uner-ewt/dev.iob2"), sentences(source / "uner-ewt/test.iob2")
    if corpus == "wikigold":
        docs = read_documents(source / "wikigold/wikigold.conll", corpus)
        train = [s for i, d in enumerate(docs) if i % 5 != 4 for s in d]
        return train, [s for i, d in enumerate(docs) if i % 5 == 4 for s in d]
    found = [s for path in re3d_files(source / "re3d") for s in sentences(path)]
    return ([s for i, s in enumerate(found) if i % 5 != 4],
            [s for i, s in enumerate(found) if i % 5 == 4])


def splits2(source: Path, corpus: str) -> Tuple[List[Sentence], List[Sentence]]:
    """(train, held-out) of the source2 corpora: the corpus's test split where it has one,
    else its dev split (MultiCoNER II), else every 5th document (LitBank's novels) or every
    5th sentence (BTC, whose files do not mark documents)."""
    def sentences(*paths):
        return [s for path in paths for doc in read_documents(source / path, corpus) for s in doc]

    own = {"bionlp13cg": "bio/BioNLP13CG", "bc5cdr": "bio/BC5CDR", "linnaeus": "bio/linnaeus"}
    if corpus in own:
        return sentences(f"{own[corpus]}/train.tsv"), sentences(f"{own[corpus]}/test.tsv")
    if corpus == "multiconer":
        return (sentences("multiconer2-en/en-train90.conll", "multiconer2-en/en-train10.conll"),
                sentences("multiconer2-en/en-dev.conll"))
    if corpus in ("wlp", "annoctr", "stackoverflow"):
        ext = {"wlp": "conll", "annoctr": "bio", "stackoverflow": "txt"}[corpus]
        return sentences(f"{corpus}/train.{ext}"), sentences(f"{corpus}/test.{ext}")
    if corpus == "litbank":
        docs = [doc for path in sorted((source / "litbank").glob("*.tsv"))
                for doc in [[s for d in read_documents(path, corpus) for s in d]]]
        return ([s for i, d in enumerate(docs) if i % 5 != 4 for s in d],
                [s for i, d in enumerate(docs) if i % 5 == 4 for s in d])
    found = sentences(*[f"btc/{part}.conll" for part in "abefgh"])
    return ([s for i, s in enumerate(found) if i % 5 != 4],
            [s for i, s in enumerate(found) if i % 5 == 4])


def re3d_files(folder: Path) -> List[Path]:
    """re3d's files, source by source in name order: a source's all.conll (its documents joined
    in name order) when it has one, else its per-document files in name order, the same order."""
    files = []
    for source in sorted(p for p in folder.iterdir() if p.is_dir()):
        joined = source / "all.conll"
        files.extend([joined] if joined.is_file() else sorted(source.glob("*.conll")))
    return files


def balanced(sentences: List[Sentence], cap: int, seed: int = 0) -> List[Sentence]:
    """At most `cap` sentences, drawn so that rare types are not drowned by frequent ones: a
    sentence's weight is 1 / the count of its rarest type (entity-free sentences weigh as a
    type of their own), sampled without replacement (Efraimidis and Spirakis) with a fixed
    seed, kept in corpus order. 0: all."""
    if not cap or len(sentences) <= cap:
        return sentences
    types = [{tag[2:] for _, tag in s if tag != "O"} or {""} for s in sentences]
    count: Dict[str, int] = {}
    for found in types:
        for t in found:
            count[t] = count.get(t, 0) + 1
    rng = random.Random(seed)
    keys = [rng.random() ** (1.0 / (1.0 / min(count[t] for t in found))) for found in types]
    chosen = sorted(sorted(range(len(sentences)), key=lambda i: -keys[i])[:cap])
    return [sentences[i] for i in chosen]


def main(source: Path, corpus_dir: Path, corpora: List[str], types_path: Path,
         dev_per_corpus: int = 4, source2: Path = None, cap: int = 0) -> Dict[str, Dict]:
    vocab = spacy.blank("en").vocab
    described = srsly.read_json(types_path)
    counts = {}
    everything: Dict[str, List[Doc]] = {"train": [], "dev": []}
    for corpus in corpora:
        root = source2 if corpus in COLUMNS2 else source
        if corpus == "re3d" and not (source / "re3d").is_dir():
            print("re3d: no folder under", source, "(fetch it with `spacy project assets --extra`): skipped")
            continue
        if corpus in COLUMNS2 and (root is None or not root.is_dir()):
            print(f"{corpus}: no source2 folder ({root}; `spacy project assets --extra`): skipped")
            continue
        train, heldout = splits(root, corpus)
        available = len(train)
        train = balanced(train, cap)
        if not train:
            raise SystemExit(f"No sentences for {corpus} under {source}.")
        out = corpus_dir / corpus
        out.mkdir(parents=True, exist_ok=True)
        docs = {name: [to_doc(vocab, s) for s in part]
                for name, part in (("train", train), ("heldout", heldout))}
        types = sorted({e.label_ for part in docs.values() for d in part for e in d.ents})
        missing = sorted(set(types) - set(described.get(corpus, {})))
        if missing:
            raise SystemExit(f"{types_path} describes no type {missing} of {corpus}.")
        for part in docs.values():
            for doc in part:
                doc.user_data[TYPES_KEY] = {t: described[corpus][t] for t in types}
        for name, part in docs.items():
            DocBin(docs=part, store_user_data=True).to_disk(out / f"{name}.spacy")
        srsly.write_json(out / "types.json", types)
        everything["train"].extend(docs["train"])
        every = max(1, len(docs["heldout"]) // dev_per_corpus)
        everything["dev"].extend(docs["heldout"][::every][:dev_per_corpus])
        counts[corpus] = {"train": len(train), "available": available,
                          "heldout": len(heldout), "types": types,
                          "no_entity": sum(not d.ents for d in docs["train"])}
        print(corpus, counts[corpus])
    random.Random(0).shuffle(everything["train"])
    labels: Dict[str, str] = {}  # every corpus's types, for the component's labels
    for corpus in counts:
        for label in counts[corpus]["types"]:
            labels.setdefault(label, described[corpus][label]["description"])
    srsly.write_json(corpus_dir / "labels.json", labels)
    srsly.write_json(corpus_dir / "counts.json", counts)
    for name, part in everything.items():
        DocBin(docs=part, store_user_data=True).to_disk(corpus_dir / f"{name}.spacy")
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--corpora", nargs="+", default=list(COLUMNS),
                        choices=[*COLUMNS, *COLUMNS2])
    parser.add_argument("--source2", type=Path, default=None,
                        help="the folder of the source2 corpora (assets/source2)")
    parser.add_argument("--cap", type=int, default=0,
                        help="at most this many training sentences per corpus, rare types "
                             "first (balanced); 0: all")
    parser.add_argument("--types", type=Path,
                        default=Path(__file__).parent.parent / "configs" / "source_types.json")
    parser.add_argument("--dev-per-corpus", type=int, default=4)
    args = parser.parse_args()
    main(args.source, args.corpus, args.corpora, args.types, args.dev_per_corpus, args.source2,
         args.cap)
