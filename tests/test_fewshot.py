from collections import Counter

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from spacy_cllmfs.corpus import read_docs
from spacy_cllmfs.errors import CorpusError, SamplingError
from spacy_cllmfs.fewshot import sample_episode

NLP = spacy.blank("en")


def doc(tags):
    """A doc with one token per IOB tag ("O", "B-X", "I-X")."""
    return Doc(NLP.vocab, words=[f"w{i}" for i in range(len(tags))], ents=tags)


def corpus():
    """40 docs: every type alone (so any N of the 4 types can be drawn), mixed, and none."""
    patterns = [
        ["B-PER", "I-PER", "O"],
        ["O", "B-ORG"],
        ["B-LOC", "O", "O"],
        ["O", "B-MISC", "I-MISC"],
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["B-ORG", "O", "B-ORG", "O", "B-PER"],
        ["B-LOC", "O", "B-MISC"],
        ["O", "O"],  # no entity: never sampled
    ]
    return [doc(patterns[i % len(patterns)]) for i in range(40)]


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_type_gets_k_to_2k_mentions(k, seed):
    docs = corpus()
    types, indices, walk = sample_episode(docs, n_ways=3, k_shots=k, seed=seed)
    assert len(types) == 3 and indices == sorted(set(indices)) and walk >= 1
    counts = Counter(e.label_ for i in indices for e in docs[i].ents)
    assert set(counts) == set(types)  # no sentence brings a type outside the N
    assert all(k <= counts[t] <= 2 * k for t in types), counts


def test_seeds_give_different_sets_and_the_same_seed_the_same_set():
    docs = corpus()
    draws = {seed: sample_episode(docs, 4, 2, seed) for seed in range(6)}
    assert draws[0] == sample_episode(docs, 4, 2, 0)
    assert len({tuple(d.indices) for d in draws.values()}) > 1


def test_a_walk_that_falls_short_is_followed_by_another_from_the_same_stream():
    """K = 1: the sentence with two ORGs first leaves no room for the one that brings PER
    (ORG would go above 2K), so that walk fails; the next walk, in a new order, can succeed.
    A first walk that succeeds is the whole draw (walk 1), as before walks were repeated."""
    two_orgs, both = doc(["B-ORG", "O", "B-ORG"]), doc(["B-ORG", "B-PER", "O", "B-PER"])
    docs = [two_orgs, both]
    draws = {seed: sample_episode(docs, 2, 1, seed) for seed in range(20)}
    assert {d.types == ["ORG", "PER"] and d.indices == [1] for d in draws.values()} == {True}
    walks = {d.walk for d in draws.values()}
    assert 1 in walks and max(walks) > 1  # some seeds needed a second walk, some did not
    late = next(seed for seed, d in draws.items() if d.walk > 1)
    assert sample_episode(docs, 2, 1, late) == draws[late]  # the re-draw is deterministic
    with pytest.raises(SamplingError, match=r"in 1 walks \(the last got ORG: 2, PER: 0\)"):
        sample_episode(docs, 2, 1, late, walks=1)


def test_too_few_examples_for_k_names_the_type():
    docs = corpus()
    with pytest.raises(SamplingError, match=r"MISC: \d+"):
        sample_episode(docs, n_ways=4, k_shots=100, seed=0)


def test_more_ways_than_types_is_an_error():
    with pytest.raises(SamplingError, match="has 4 entity types"):
        sample_episode(corpus(), n_ways=5, k_shots=1, seed=0)


def test_read_docs_rejects_a_file_that_is_not_a_docbin(tmp_path):
    good = tmp_path / "good.spacy"
    DocBin(docs=corpus()[:3]).to_disk(good)
    assert [d.text for d in read_docs(good, NLP.vocab)] == [d.text for d in corpus()[:3]]
    bad = tmp_path / "train.spacy"
    bad.write_text("Ana\tB-PER\n", encoding="utf8")
    with pytest.raises(CorpusError, match="is not a spaCy DocBin"):
        read_docs(bad, NLP.vocab)
    with pytest.raises(FileNotFoundError, match="spacy convert"):
        read_docs(tmp_path / "missing.spacy", NLP.vocab)


def test_the_schedule_scales_with_the_shots():
    from spacy_cllmfs.schedule import fewshot_steps

    assert fewshot_steps(12, 2, epochs=10) == 60
    assert fewshot_steps(40, 2, epochs=10) == 200  # K = 20: longer, same epochs
    assert fewshot_steps(3, 2, epochs=10) == 20  # K = 1: the floor
    assert fewshot_steps(3, 2, epochs=10, min_steps=1) == 15
    with pytest.raises(ValueError, match="at least one training sentence"):
        fewshot_steps(0, 2, epochs=10)


def test_schedule_overrides_fit_a_warmup_linear_config():
    from pathlib import Path

    from spacy_cllmfs import configs
    from spacy_cllmfs.schedule import overrides

    project = Path(__file__).parents[1] / "project" / "configs"
    config = spacy.util.load_config(project / "cllmfs_smoke.cfg")  # batches of 4
    found = overrides(config, n_docs=12, epochs=10, warmup=0.1)
    assert dict(zip(found[::2], found[1::2])) == {
        "--training.max_steps": "30", "--training.eval_frequency": "30",
        "--training.optimizer.learn_rate.total_steps": "30",
        "--training.optimizer.learn_rate.warmup_steps": "3"}
    with pytest.raises(ValueError, match="warmup_linear"):
        overrides(spacy.util.load_config(project / "cllmfs_cpu.cfg"), 12, 10)
    # the packaged recipe counts its corpus itself: only its settings are passed
    found = overrides(spacy.util.load_config(configs.path("fewshot")), 12, 5, 0.2, evaluations=4)
    found = dict(zip(found[::2], found[1::2]))
    assert found["--training.max_steps.epochs"] == "5"
    assert found["--training.optimizer.learn_rate.warmup"] == "0.2"
    assert found["--training.eval_frequency.evaluations"] == "4"


def test_evaluations_spread_over_the_steps():
    from spacy_cllmfs.schedule import eval_frequency

    assert eval_frequency(60) == 60
    assert eval_frequency(60, 4) == 15
    assert eval_frequency(3, 4) == 1
