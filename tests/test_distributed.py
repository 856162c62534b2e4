"""Corpus-scale processing on Ray Data, on a local 2-CPU cluster and the tiny model."""
import json
import os
import signal
import threading
import time

import pytest

from .util import TRAIN

pytestmark = pytest.mark.slow  # Ray clusters in subprocesses

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from spacy_cllmfs.distributed import input_files, run  # noqa: E402

# Written for these tests.
TEXTS = [t for t, _ in TRAIN] + ["Nothing here.", "Apple and Maria Lopez met in Madrid.", "x"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pipeline(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline")
    trained_nlp.to_disk(path)
    return path


def write_jsonl(path, records, extra_lines=()):
    with open(path, "w", encoding="utf8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
        for line in extra_lines:
            out.write(line + "\n")
    return path


def read(path):
    return [json.loads(line) for line in open(path, encoding="utf8")]


def expected(nlp, texts):
    return [[(e.start_char, e.end_char, e.label_, e.text, e._.cllmfs_score) for e in doc.ents]
            for doc in nlp.pipe(texts)]


def got(records):
    return [[(e["start"], e["end"], e["label"], e["text"], e["score"]) for e in r["ents"]]
            for r in records]


def assert_same(found, wanted):
    assert [[e[:4] for e in doc] for doc in found] == [[e[:4] for e in doc] for doc in wanted]
    for f_doc, w_doc in zip(found, wanted):  # batches pad differently: float rounding only
        assert [e[4] for e in f_doc] == pytest.approx([e[4] for e in w_doc], rel=1e-5)


@pytest.mark.parametrize("actors,batch_size", [(1, 3), (2, 5)])
def test_results_equal_nlp_pipe(cluster, pipeline, trained_nlp, tmp_path, actors, batch_size):
    texts = TEXTS * 4
    source = write_jsonl(tmp_path / "part.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])
    summary = run(str(pipeline), source, tmp_path / "out", actors=actors, batch_size=batch_size)
    assert summary["records"] == len(texts) and summary["errors"] == 0
    records = read(tmp_path / "out" / "part.jsonl")
    assert [r["id"] for r in records] == [f"d{i}" for i in range(len(texts))]
    assert [r["text"] for r in records] == texts
    assert any(r["ents"] for r in records)
    assert_same(got(records), expected(trained_nlp, texts))


def test_bad_records_get_an_error_and_none_is_dropped(cluster, pipeline, tmp_path):
    records = [{"id": 1, "text": TEXTS[0]}, {"id": 2}, {"id": 3, "text": 42},
               {"id": 4, "text": ""}, {"id": 5, "text": None}, {"id": 6, "body": TEXTS[1]}]
    source = write_jsonl(tmp_path / "bad.jsonl", records, extra_lines=["{not json", "[1, 2]"])
    summary = run(str(pipeline), source, tmp_path / "out", batch_size=2)
    out = read(tmp_path / "out" / "bad.jsonl")
    assert summary == {**summary, "records": 8, "errors": 7}
    assert [r["id"] for r in out] == [1, 2, 3, 4, 5, 6, None, None]
    assert "ents" in out[0] and "error" not in out[0]
    errors = [r["error"] for r in out[1:]]
    assert errors[:5] == ["no 'text' field", "'text' is not a string but int", "'text' is empty",
                          "'text' is not a string but NoneType", "no 'text' field"]
    assert errors[5].startswith("not JSON") and errors[6] == "not a JSON object"
    assert all("ents" not in r for r in out[1:])


def test_text_and_id_keys(cluster, pipeline, trained_nlp, tmp_path):
    source = write_jsonl(tmp_path / "keys.jsonl", [{"doc": 7, "body": TEXTS[0]}])
    run(str(pipeline), source, tmp_path / "out", text_key="body", id_key="doc")
    (record,) = read(tmp_path / "out" / "keys.jsonl")
    assert record["id"] == 7 and record["text"] == TEXTS[0]
    assert_same(got([record]), expected(trained_nlp, TEXTS[:1]))


def test_parquet_and_a_folder_of_inputs(cluster, pipeline, trained_nlp, tmp_path):
    import pandas as pd

    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"id": i, "text": t} for i, t in enumerate(TEXTS[:3])])
    pd.DataFrame({"id": [10, 11, 12], "text": TEXTS[3:]}).to_parquet(folder / "b.parquet")
    (folder / "notes.txt").write_text("not an input")
    summary = run(str(pipeline), folder, tmp_path / "out", actors=2, batch_size=2)
    assert summary["files"] == 2 and summary["records"] == 6
    a, b = read(tmp_path / "out" / "a.jsonl"), read(tmp_path / "out" / "b.jsonl")
    assert [r["id"] for r in a + b] == [0, 1, 2, 10, 11, 12]
    assert_same(got(a + b), expected(trained_nlp, TEXTS))


def test_running_again_resumes(cluster, pipeline, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"id": 1, "text": TEXTS[0]}])
    first = run(str(pipeline), folder, tmp_path / "out")
    done = (tmp_path / "out" / "a.jsonl").read_bytes()
    assert first["skipped"] == 0 and first["records"] == 1
    write_jsonl(folder / "b.jsonl", [{"id": 2, "text": TEXTS[1]}, {"id": 3, "text": TEXTS[2]}])
    second = run(str(pipeline), folder, tmp_path / "out")
    assert second["skipped"] == 1 and second["records"] == 2  # only b was run
    assert (tmp_path / "out" / "a.jsonl").read_bytes() == done
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jsonl", "b.jsonl"]
    third = run(str(pipeline), folder, tmp_path / "out")
    assert third["skipped"] == 2 and third["records"] == 0


def test_an_actor_killed_mid_run_is_restarted_and_nothing_is_lost(cluster, pipeline, trained_nlp,
                                                                 tmp_path):
    texts = TEXTS * 200  # enough batches that the run outlasts the kill on a fast machine too
    source = write_jsonl(tmp_path / "many.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])

    def actors():
        """The pids of the processes that are Ray actors (named after their class) now."""
        return {proc.info["pid"] for proc in psutil.process_iter(["pid", "cmdline"])
                if "MapWorker" in " ".join(proc.info["cmdline"] or [])}

    # Actors of earlier tests may still be shutting down. Ray reuses its idle worker processes,
    # so the actor can be a process that was already there: it is known by its name, not its pid.
    before = actors()
    killed = []

    def kill_an_actor():
        deadline = time.time() + 120
        while time.time() < deadline:
            for pid in actors() - before:
                time.sleep(0.5)  # the actor has just taken its name: it is loading or annotating
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append((pid, time.time()))
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_an_actor)
    killer.start()
    summary = run(str(pipeline), source, tmp_path / "out", actors=1, batch_size=4)
    finished = time.time()
    killer.join()
    assert killed, "no actor process was found to kill"
    (pid, when), = killed
    assert when < finished and not psutil.pid_exists(pid)  # killed mid-run
    records = read(tmp_path / "out" / "many.jsonl")
    assert summary["records"] == len(texts) and summary["errors"] == 0
    assert [r["id"] for r in records] == list(range(len(texts)))  # each id once, in order
    assert_same(got(records), expected(trained_nlp, texts))


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No input"):
        input_files(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no .jsonl or .parquet files"):
        input_files(tmp_path)
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "a.parquet").write_text("")
    with pytest.raises(ValueError, match="share the names"):
        input_files(tmp_path)
    (tmp_path / "data.csv").write_text("")
    with pytest.raises(ValueError, match="JSONL"):
        input_files(tmp_path / "data.csv")


def test_the_command_line(cluster, pipeline, tmp_path, capsys):
    from spacy_cllmfs.distributed import main

    source = write_jsonl(tmp_path / "cli.jsonl", [{"key": "a", "body": TEXTS[0]}])
    main([str(pipeline), str(source), str(tmp_path / "out"), "--actors", "1",
          "--batch-size", "2", "--text-key", "body", "--id-key", "key"])
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["records"] == 1
    (record,) = read(tmp_path / "out" / "cli.jsonl")
    assert record["id"] == "a" and record["ents"]
    with pytest.raises(ValueError, match="--actors"):
        main([str(pipeline), str(source), str(tmp_path / "out2"), "--actors", "0"])
