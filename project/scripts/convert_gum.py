"""Convert GUM's entity layer to CoNLL (token<TAB>IOB2 tag), the few-shot target with ten
everyday mention types (abstract, animal, event, object, organization, person, place, plant,
substance, time): every mention, named or not.

Reads the upstream `dep/GUM_<genre>_*.conllu` files (the MISC column's `Entity=` brackets:
`(ID-type-...` opens a mention, `ID)` closes it, `(ID-type-...)` is a one-token mention) of the
openly licensed genres (academic, bio, court, interview, news, voyage) and `splits.md` (dev and
test documents; every other document of those genres is train). Nested mentions are flattened
to the outermost one. Writes OUTPUT_DIR/{train,dev,test}.conll with `-DOCSTART-` before each
document, in document-name order; `python scripts/convert.py` then makes DocBins of them.

Usage: python scripts/convert_gum.py GUM_DIR OUTPUT_DIR
"""
import argparse
from pathlib import Path
from typing import Dict, List, Tuple

GENRES = ("academic", "bio", "court", "interview", "news", "voyage")


def read_splits(path: Path) -> Dict[str, str]:
    """document name -> "dev" or "test", from splits.md's lists."""
    found, section = {}, None
    for line in path.read_text(encoding="utf8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.strip().startswith("* ") and section in ("dev", "test"):
            found[line.strip()[2:].strip()] = section
    return found


def entity_events(misc: str) -> Tuple[List[Tuple[str, str, bool]], List[str]]:
    """The mentions a token opens (id, type, closed on this token too) and those it closes,
    from its `Entity=` value: `(ID-type-...` opens, `(ID-type-...)` opens and closes, `ID)`
    closes (a mention's fields hold no parentheses)."""
    value = next((part[len("Entity="):] for part in misc.split("|")
                  if part.startswith("Entity=")), "")
    opens, closes, i = [], [], 0
    while i < len(value):
        if value[i] == "(":
            j = i + 1
            while j < len(value) and value[j] not in "()":
                j += 1
            ident, etype = value[i + 1 : j].split("-")[:2]
            closed = j < len(value) and value[j] == ")"
            opens.append((ident, etype, closed))
            i = j + 1 if closed else j
        elif value[i].isdigit():
            j = value.index(")", i)
            closes.append(value[i:j])
            i = j + 1
        else:
            i += 1
    return opens, closes


def read_document(path: Path) -> List[List[Tuple[str, str]]]:
    """The document's sentences as (token, IOB2 tag), outermost mentions only."""
    sentences: List[List[str]] = []
    spans: List[Tuple[int, int, str]] = []  # document token offsets
    starts: Dict[str, Tuple[int, str]] = {}  # open mentions by id (see below)
    tokens: List[str] = []
    bounds: List[int] = []
    for line in path.read_text(encoding="utf8").splitlines() + [""]:
        if not line.strip():
            if not bounds or bounds[-1] != len(tokens):
                bounds.append(len(tokens))
            continue
        if line.startswith("#"):
            continue
        columns = line.split("\t")
        if not columns[0].isdigit():  # multi-word ranges and empty nodes
            continue
        i = len(tokens)
        tokens.append(columns[1])
        opens, closes = entity_events(columns[9])
        for ident, etype, closed in opens:
            if closed:
                spans.append((i, i + 1, etype))
            else:
                # A mention nested in another of the same group (an apposition) reuses its id:
                # the inner one replaces the outer, whose close is then ignored. This is how
                # the converted copy the project's figures come from (../shared/data/gum) reads
                # them, so that both give the same data.
                starts[ident] = (i, etype)
        for ident in closes:
            if ident in starts:
                start, etype = starts.pop(ident)
                spans.append((start, i + 1, etype))
    tags = ["O"] * len(tokens)
    for start, end, etype in sorted(spans, key=lambda s: (s[0], -s[1])):
        if all(tag == "O" for tag in tags[start:end]) and not _inside(spans, start, end):
            tags[start:end] = ["B-" + etype] + ["I-" + etype] * (end - start - 1)
    begin = 0
    for end in bounds:
        if end > begin:
            sentences.append(list(zip(tokens[begin:end], tags[begin:end])))
        begin = end
    return sentences


def _inside(spans, start: int, end: int) -> bool:
    return any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans)


def main(gum: Path, output: Path) -> Dict[str, int]:
    splits = read_splits(gum / "splits.md")
    parts: Dict[str, List[str]] = {"train": [], "dev": [], "test": []}
    counts = {name: 0 for name in parts}
    files = sorted(p for p in (gum / "dep").glob("GUM_*.conllu")
                   if p.stem.split("_")[1] in GENRES)
    if not files:
        raise SystemExit(f"No GUM_<genre>_*.conllu files under {gum / 'dep'}.")
    for path in files:
        part = splits.get(path.stem, "train")
        lines = ["-DOCSTART-\tO", ""]
        for sentence in read_document(path):
            lines += [f"{token}\t{tag}" for token, tag in sentence] + [""]
            counts[part] += 1
        parts[part].append("\n".join(lines))
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in parts.items():
        (output / f"{name}.conll").write_text("\n".join(docs), encoding="utf8")
    print({name: f"{len(parts[name])} documents, {counts[name]} sentences" for name in parts})
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gum", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    main(args.gum, args.output)
