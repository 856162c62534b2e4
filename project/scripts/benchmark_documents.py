"""Documents against their sentences: strict F1 and speed, taken side by side in one run.

Consecutive sentences of a split (WNUT-17 by default) are joined into documents of --group
sentences and run through `nlp.pipe` three ways, with the shipped general adapter and the
described types:
- sentences: each sentence a document of its own (what every other figure measures);
- documents, sentences marked: the joined documents with their sentence boundaries (what a
  sentencizer or parser before the component gives);
- documents, unmarked: the same text with no sentence boundaries;
both at each --windows setting of decoding.window_tokens.
For each: strict micro F1 (seqeval) against the gold entities, the entities found as a share
of those found in the sentences run separately, documents/s and text tokens/s (model tokens of
the documents' text per second), and the answers cut off at max_new_tokens.

Usage: python scripts/benchmark_documents.py OUTPUT_JSON [--data DATA_DIR] [--split dev]
       [--sentences 200] [--group 10] [--windows 32 64]
"""
import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
from spacy.tokens import Doc

from spacy_cllmfs.scoring import strict_scores, unannotated

from benchmark import DESCRIPTIONS, make_nlp, read_conll

SHIPPED = "general-ner.v1"


def join(sentences, group: int, vocab, marked: bool):
    """Documents of `group` consecutive sentences, with or without sentence boundaries."""
    docs = []
    for i in range(0, len(sentences), group):
        doc = Doc.from_docs(sentences[i : i + group], ensure_whitespace=True)
        if marked:
            starts = {0}
            at = 0
            for sent in sentences[i : i + group]:
                starts.add(at)
                at += len(sent)
            for token in doc:
                token.is_sent_start = token.i in starts
        else:
            doc = Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc],
                      ents=[t.ent_iob_ + ("-" + t.ent_type_ if t.ent_type_ else "") for t in doc])
        docs.append(doc)
    return docs


def run(nlp, gold, labels, marked: bool):
    pipe = nlp.get_pipe("cllmfs_ner")
    texts = unannotated(gold, nlp.vocab)
    if marked:
        for text, doc in zip(texts, gold):
            for token, ref in zip(text, doc):
                token.is_sent_start = ref.is_sent_start
    stats = pipe.decode_stats
    cut_before = stats.cut_off
    start = time.perf_counter()
    predicted = list(nlp.pipe(texts, batch_size=1000))
    seconds = time.perf_counter() - start
    prompter = pipe.prompter
    tokens = sum(len(prompter.encode_text(d.text).offsets) for d in gold)
    scores = strict_scores(gold, predicted, labels)
    return {
        "documents": len(gold),
        "f1": round(100 * scores["f1"], 1),
        "precision": round(100 * scores["precision"], 1),
        "recall": round(100 * scores["recall"], 1),
        "entities_found": sum(len(d.ents) for d in predicted),
        "docs_per_s": round(len(gold) / seconds, 3),
        "text_tokens_per_s": round(tokens / seconds, 1),
        "seconds": round(seconds, 1),
        "cut_off": stats.cut_off - cut_before,
    }


def main(output: Path, data: Path, split: str, n: int, group: int, window_settings) -> None:
    torch.manual_seed(0)
    labels = {k: v for k, v in json.loads(DESCRIPTIONS.read_text()).items() if k[0] != "_"}
    nlp = make_nlp(labels, SHIPPED)
    pipe = nlp.get_pipe("cllmfs_ner")
    sentences = read_conll(data / f"{split}.conll", nlp.vocab)[:n]
    list(nlp.pipe(unannotated(sentences[:4], nlp.vocab)))  # warm-up
    default = pipe.decoding
    results = {"sentences": run(nlp, sentences, labels, marked=False)}
    marked = join(sentences, group, nlp.vocab, True)
    unmarked = join(sentences, group, nlp.vocab, False)
    for window in window_settings:
        pipe.decoding = dataclasses.replace(default, window_tokens=window)
        results[f"documents_marked_window{window}"] = run(nlp, marked, labels, True)
        results[f"documents_unmarked_window{window}"] = run(nlp, unmarked, labels, False)
    pipe.decoding = default
    found = results["sentences"]["entities_found"]
    for entry in results.values():
        entry["found_share_of_sentences"] = round(entry["entities_found"] / max(1, found), 3)
    report = {
        "data": f"{data.name} {split}, first {len(sentences)} sentences, documents of {group}",
        "adapter": SHIPPED, "types": len(labels), "default_window_tokens": default.window_tokens,
        "machine": platform.machine(), "threads": torch.get_num_threads(), "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../../shared/data/wnut17"))
    parser.add_argument("--split", default="dev")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--group", type=int, default=10)
    parser.add_argument("--windows", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    main(args.output, args.data, args.split, args.sentences, args.group, args.windows)
