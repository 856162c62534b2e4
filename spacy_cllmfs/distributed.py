"""Corpus-scale NER on Ray Data: a saved pipeline over JSONL or Parquet, JSONL shards out.

    python -m spacy_cllmfs.distributed PIPELINE INPUT OUTPUT_DIR [--actors N] [--batch-size B]
        [--address ADDR] [--text-key text] [--id-key id]

PIPELINE is a `spacy package`d name or a pipeline folder; INPUT a .jsonl file, a .parquet file,
or a folder of them. OUTPUT_DIR gets one shard per input file, `<input stem>.jsonl`, with one
record per input record, in input order:
`{"id": ..., "text": ..., "ents": [{"start", "end", "label", "text", "score"}]}` (character
offsets), or, for a record whose text is missing, not a string or empty (or a line that is not a
JSON object), the same record with an "error" and no "ents". No record is dropped.

Each actor loads the pipeline once and runs `nlp.pipe` on the batches Ray Data streams to it.
An actor that dies is restarted and its batch retried (Ray Data's actor pools set Ray's
`max_restarts` and `max_task_retries` to -1), so each input record still comes out exactly
once. A shard is written
under a temporary name and renamed when whole: running again into the same OUTPUT_DIR skips
the input files that are done. Needs the `ray` extra: pip install "spacy-cllmfs[ray]".
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

SUFFIXES = (".jsonl", ".parquet")


def input_files(path: Path) -> List[Path]:
    """The input files, sorted; an error names what is wrong with the path."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no {' or '.join(SUFFIXES)} files.")
    else:
        raise FileNotFoundError(f"No input at {path}.")
    for file in files:
        if file.suffix not in SUFFIXES:
            raise ValueError(f"{file}: the input must be JSONL (.jsonl) or Parquet (.parquet).")
    stems = [f.stem for f in files]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ValueError(f"Input files share the names {clash}: their output shards would clash.")
    return files


def parse_line(line: str, text_key: str, id_key: str) -> Tuple[dict, Optional[str]]:
    """(the output record so far, the text to annotate or None when the record is an error)."""
    try:
        record = json.loads(line)
    except ValueError as err:
        return {"id": None, "text": None, "error": f"not JSON: {err}"}, None
    if not isinstance(record, dict):
        return {"id": None, "text": None, "error": "not a JSON object"}, None
    out = {"id": record.get(id_key), "text": record.get(text_key)}
    text = out["text"]
    if text_key not in record:
        out["error"] = f"no {text_key!r} field"
    elif not isinstance(text, str):
        out["error"] = f"{text_key!r} is not a string but {type(text).__name__}"
    elif not text:
        out["error"] = f"{text_key!r} is empty"
    return out, None if "error" in out else text


def entities(doc) -> List[Dict]:
    return [
        {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text,
         "score": e._.cllmfs_score if e.has_extension("cllmfs_score") else None}
        for e in doc.ents
    ]


class Annotator:
    """A Ray Data actor: loads the pipeline once, annotates batches of JSON lines."""

    def __init__(self, pipeline: str, text_key: str, id_key: str, batch_size: int):
        import spacy

        self.nlp = spacy.load(pipeline)
        self.text_key, self.id_key, self.batch_size = text_key, id_key, batch_size

    def __call__(self, batch: Dict) -> Dict:
        import numpy as np

        parsed = [parse_line(line, self.text_key, self.id_key) for line in batch["line"]]
        texts = [text for _, text in parsed if text is not None]
        docs = iter(self.nlp.pipe(texts, batch_size=self.batch_size))
        lines = []
        for out, text in parsed:
            if text is not None:
                out["ents"] = entities(next(docs))
            lines.append(json.dumps(out, ensure_ascii=False))
        errors = [text is None for _, text in parsed]
        return {"out": np.array(lines, dtype=object), "error": np.array(errors, dtype=bool)}


def _parquet_lines(frame) -> Dict:
    """Parquet rows as JSON lines (pandas writes numpy values as plain JSON)."""
    import pandas as pd

    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    return pd.DataFrame({"line": [line for line in text.split("\n") if line]})


def _lines(file: Path):
    """The file's records as JSON lines. Reading reserves no CPU: the actors hold one each,
    and with one actor per core a read that waits for a free CPU would wait forever."""
    import ray.data

    if file.suffix == ".parquet":
        return ray.data.read_parquet(str(file), num_cpus=0).map_batches(
            _parquet_lines, batch_format="pandas", num_cpus=0
        )
    return ray.data.read_text(str(file), num_cpus=0).rename_columns({"text": "line"}, num_cpus=0)


def run(pipeline: str, source: Path, output_dir: Path, *, actors: int = 1,
        batch_size: int = 32, address: Optional[str] = None, text_key: str = "text",
        id_key: str = "id") -> Dict:
    """Annotate every input file not done yet; returns what was done (counts, seconds)."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError('Ray Data is needed: pip install "spacy-cllmfs[ray]"') from err
    if actors < 1 or batch_size < 1:
        raise ValueError(f"--actors ({actors}) and --batch-size ({batch_size}) must be >= 1.")
    files = input_files(source)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if Path(pipeline).exists():
        pipeline = str(Path(pipeline).resolve())  # actors may run elsewhere
    todo = [f for f in files if not (output_dir / f"{f.stem}.jsonl").exists()]
    summary = {"files": len(files), "skipped": len(files) - len(todo), "records": 0,
               "errors": 0, "seconds": 0.0}
    if not todo:
        return summary
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    # Ray 2.60's DataSourceV2 Parquet reader lists files in a task that takes a whole CPU,
    # which the actors already hold; the V1 reader honours num_cpus=0 (see _lines).
    context.use_datasource_v2 = False
    start = time.perf_counter()
    try:
        for file in todo:
            annotated = _lines(file).map_batches(
                Annotator,
                fn_constructor_kwargs={"pipeline": pipeline, "text_key": text_key,
                                       "id_key": id_key, "batch_size": batch_size},
                batch_size=batch_size,
                compute=ray.data.ActorPoolStrategy(size=actors),
            )
            shard = output_dir / f"{file.stem}.jsonl"
            partial = output_dir / f".{file.stem}.jsonl.partial"
            with partial.open("w", encoding="utf8") as out:
                for row in annotated.iter_rows():
                    out.write(row["out"] + "\n")
                    summary["records"] += 1
                    summary["errors"] += bool(row["error"])
            os.replace(partial, shard)
    finally:
        summary["seconds"] = round(time.perf_counter() - start, 2)
        if started_here:
            ray.shutdown()
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", help="a spacy package name or a pipeline folder")
    parser.add_argument("input", type=Path, help="a .jsonl or .parquet file, or a folder of them")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--actors", type=int, default=1, help="pipeline copies (one per CPU)")
    parser.add_argument("--batch-size", type=int, default=32, help="records per batch")
    parser.add_argument("--address", default=None, help="a Ray cluster (default: start one here)")
    parser.add_argument("--text-key", default="text")
    parser.add_argument("--id-key", default="id")
    args = parser.parse_args(argv)
    summary = run(args.pipeline, args.input, args.output_dir, actors=args.actors,
                  batch_size=args.batch_size, address=args.address, text_key=args.text_key,
                  id_key=args.id_key)
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
