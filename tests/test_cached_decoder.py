"""The cached decoder predicts what plain `generate` on full prompts predicts."""
import copy
import dataclasses

import pytest
from thinc.api import Adam

from spacy_cllmfs.cached_decoder import shared_head

from .util import TRAIN, ents, examples

# Written for these tests: seen in training, unseen, repeated mentions, empty and odd input.
TEXTS = [
    "Tim Cook said Apple will open an office in Lagos.",
    "Maria Lopez flew from Madrid.",
    "",
    "   ",
    "The board of Northwind Labs met on Monday. Tim Cook said so, and Apple agreed.",
    "x",
    "Apple, Apple and Apple: Maria Lopez met Tim Cook.",
    "A much longer sentence about nothing in particular that goes on for a while " * 3,
]


def predictions(nlp, reuse_cache, rows_per_batch, batch_size, cache_mb=0.0):
    pipe = nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    pipe.decoding = dataclasses.replace(
        saved, reuse_cache=reuse_cache, batch_size=rows_per_batch, cache_mb=cache_mb
    )
    try:
        return [ents(doc) for doc in nlp.pipe(TEXTS, batch_size=batch_size)]
    finally:
        pipe.decoding = saved


def test_the_setting_chooses_the_decoder(trained_nlp):
    from spacy_cllmfs.cached_decoder import CachedDecoder
    from spacy_cllmfs.decoders import PlainDecoder

    pipe = trained_nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    try:
        for reuse, kind in ((True, CachedDecoder), (False, PlainDecoder)):
            pipe.decoding = dataclasses.replace(saved, reuse_cache=reuse)
            assert isinstance(pipe._ready()[1], kind)
    finally:
        pipe.decoding = saved


@pytest.mark.parametrize(
    "rows_per_batch,batch_size,cache_mb", [(1, 1, 0), (4, 3, 0), (16, 16, 0), (64, 16, 0.05)]
)
def test_cached_decoding_equals_plain_generate(trained_nlp, rows_per_batch, batch_size, cache_mb):
    plain = predictions(trained_nlp, False, 16, 16)
    fast = predictions(trained_nlp, True, rows_per_batch, batch_size, cache_mb)
    assert any(plain), "the trained pipeline should find entities"
    assert_same(fast, plain)


@pytest.mark.parametrize("rows_per_batch,batch_size", [(1, 1), (3, 3), (16, 16)])
def test_joint_cached_decoding_equals_plain_generate(trained_joint_nlp, rows_per_batch,
                                                     batch_size):
    """One question per text (ner.v3): the answer names the types, both decoders agree."""
    plain = predictions(trained_joint_nlp, False, 16, 16)
    fast = predictions(trained_joint_nlp, True, rows_per_batch, batch_size)
    labels = {e[2] for doc in plain for e in doc}
    assert labels == {"PERSON", "ORG"}, "the trained pipeline should find both types"
    assert_same(fast, plain)
    # the first text was seen in training, each entity under its own type
    assert [e[:3] for e in fast[0]] == [(0, 8, "PERSON"), (14, 19, "ORG")]


def test_a_joint_decoder_reads_one_question_per_document(trained_joint_nlp):
    pipe = trained_joint_nlp.get_pipe("cllmfs_ner")
    prompter, decoder = pipe._ready()
    decoder.stats.reset()
    list(trained_joint_nlp.pipe(TEXTS[:2]))
    question = len(prompter.questions[""].ids)
    assert decoder.stats.rows == decoder.stats.documents == 2
    assert decoder.stats.questions == 2 * question


def assert_same(fast, plain):
    assert [[e[:3] for e in doc] for doc in fast] == [[e[:3] for e in doc] for doc in plain]
    for f_doc, p_doc in zip(fast, plain):
        for f, p in zip(f_doc, p_doc):
            assert f[3] == pytest.approx(p[3], rel=1e-4)


def test_the_prefix_cache_follows_the_weights(trained_nlp):
    """After an update, predictions use the new weights, not the old prefix cache."""
    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    nlp("Tim Cook said so.")  # fills the prefix cache
    decoder = pipe._ready()[1]
    assert decoder.prefix.ready
    before = pipe.language_model.generation
    nlp.update(examples(nlp), sgd=Adam(0.01))
    assert pipe.language_model.generation != before  # the weights changed: LanguageModel says so
    nlp("Tim Cook said so.")
    assert decoder.prefix.ready  # computed again, from the new weights
    assert_same(predictions(nlp, True, 16, 16), predictions(nlp, False, 16, 16))


def test_use_params_before_the_model_loads():
    from .util import tiny_nlp

    nlp = tiny_nlp()
    pipe = nlp.get_pipe("cllmfs_ner")
    # spaCy's trainer does this with averaged weights; Language.use_params drives each pipe's
    # use_params generator with next()
    with nlp.use_params({(-1, "not-a-parameter"): None}):
        assert not pipe.language_model.loaded


def test_rows_per_batch_follows_the_cache_budget():
    from spacy_cllmfs.cached_decoder import rows_per_batch

    # 1 MiB budget, rows of 100 positions at 1,024 bytes each: 10 rows fit.
    assert rows_per_batch(1.0, 100, 1024, cap=96) == 10
    assert rows_per_batch(1.0, 100, 1024, cap=4) == 4  # batch_size stays the upper bound
    assert rows_per_batch(0.001, 100, 1024, cap=96) == 1  # a row that does not fit goes alone
    assert rows_per_batch(0, 100, 1024, cap=96) == 96  # 0: no memory bound


def test_batches_go_shortest_first_within_the_budget(trained_nlp):
    from spacy_cllmfs.cached_decoder import cache_bytes_per_position

    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    prompter, _ = pipe._ready()
    texts = [prompter.encode_text(t) for t in TEXTS]
    per_position = cache_bytes_per_position(pipe.language_model.lm)
    config = pipe.language_model.lm.config
    assert per_position == 2 * config.num_hidden_layers * config.num_key_value_heads * (
        config.hidden_size // config.num_attention_heads) * 4
    fixed = len(prompter.prefix_ids) + pipe.decoding.max_new_tokens + max(
        len(q.ids) for q in prompter.questions.values())
    n_types = len(pipe.labels)
    # Room for the rows of exactly 3 documents of the longest text.
    longest = max(len(t.ids) for t in texts)
    budget = 3 * n_types * (fixed + longest) * per_position / 2**20
    pipe.decoding = dataclasses.replace(pipe.decoding, batch_size=1000, cache_mb=budget)
    batches = list(pipe._ready()[1]._batches(texts, n_types))
    order = [i for batch in batches for i in batch]
    assert sorted(order) == list(range(len(texts)))  # every document once
    assert [len(texts[i].ids) for i in order] == sorted(len(t.ids) for t in texts)
    for batch in batches:
        width = fixed + max(len(texts[i].ids) for i in batch)
        assert len(batch) * n_types * width * per_position <= budget * 2**20
    assert len(batches[-1]) <= 3 and max(len(b) for b in batches) > 3  # short texts pack more


def test_shared_head_leaves_each_question_its_last_id():
    assert shared_head([(1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 7)]) == 2
    assert shared_head([(1, 2), (1, 2, 3)]) == 1  # the shorter keeps its last id
    assert shared_head([(1, 2, 3), (1, 2, 3)]) == 2
    assert shared_head([(1, 2), (3, 2)]) == 0
    assert shared_head([(1, 2, 3)]) == 0  # one type: nothing to share


def test_decode_stats_count_every_position(trained_nlp):
    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    pipe.decoding = dataclasses.replace(pipe.decoding, batch_size=1000, cache_mb=0)
    prompter, decoder = pipe._ready()
    texts = [TRAIN[1][0], TRAIN[0][0]]  # of different lengths, both with entities
    decoder.stats.reset()
    docs = list(nlp.pipe(texts))
    stats = decoder.stats
    lengths = [len(prompter.encode_text(t).ids) for t in texts]
    questions = [prompter.questions[label].ids for label in pipe.labels]
    head = shared_head(questions)
    assert head > 0  # every question begins with the template's "\n\n### Type:"
    assert (stats.documents, stats.rows, stats.batches) == (2, 2 * len(questions), 1)
    assert stats.text == sum(lengths)
    # The shared head is read once per document, the rest of each question once per row.
    assert stats.questions == 2 * (head + sum(len(q) - head for q in questions))
    assert len({len(q) for q in questions}) > 1  # questions of different lengths, none padded:
    assert stats.padding == max(lengths) - min(lengths)
    # Every row chooses at least its end token; every token but each row's last is read back.
    assert stats.answer_tokens >= stats.rows
    assert stats.answers == stats.answer_tokens - stats.rows
    assert stats.answer_tokens > stats.rows  # the trained pipeline answers, not only "none"
    assert sum(len(d.ents) for d in docs) > 0
    stats.reset()
    assert dataclasses.asdict(stats) == dict.fromkeys(dataclasses.asdict(stats), 0)


@pytest.mark.parametrize("answer_threshold", [0.2, 1 - 1e-12])
def test_both_decoders_agree_at_any_answer_threshold(trained_nlp, answer_threshold):
    """The threshold on answering goes through both decoders the same way (the decision itself
    is tested in test_constraint.py). This overfit tiny model is so sure of itself that 0.2
    changes nothing and only a bar within 1e-12 of 1 moves it: there both decoders write fewer
    entities than greedy decoding."""
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    try:
        default = predictions(trained_nlp, True, 16, 16)
        pipe.decoding = dataclasses.replace(saved, answer_threshold=answer_threshold)
        fast = predictions(trained_nlp, True, 16, 16)
        plain = predictions(trained_nlp, False, 16, 16)
    finally:
        pipe.decoding = saved
    assert_same(fast, plain)
    assert sum(map(len, default)) > 0
    if answer_threshold > 0.5:
        assert sum(map(len, fast)) < sum(map(len, default))


def test_rows_stopped_by_the_token_budget_are_counted(trained_joint_nlp):
    """A joint row writes every type's entities: one that runs out of max_new_tokens is counted
    (DecodeStats.cut_off), and its unfinished entity is not written."""
    pipe = trained_joint_nlp.get_pipe("cllmfs_ner")
    saved = pipe.decoding
    try:
        decoder = pipe._ready()[1]
        decoder.stats.reset()
        full = [ents(doc) for doc in trained_joint_nlp.pipe(TEXTS[:2])]
        assert decoder.stats.cut_off == 0 and all(full)
        pipe.decoding = dataclasses.replace(saved, max_new_tokens=2)
        decoder = pipe._ready()[1]
        cut = [ents(doc) for doc in trained_joint_nlp.pipe(TEXTS[:2])]
        assert decoder.stats.cut_off == 2 and cut == [[], []]
    finally:
        pipe.decoding = saved


def test_one_type_reads_its_question_with_the_text(trained_nlp):
    """A per-type pipeline with one label takes the single-question path (the question read
    in the text pass): the same predictions as plain generate."""
    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    pipe._set_labels({"PERSON": pipe.label_descriptions["PERSON"]})
    plain = predictions(nlp, False, 16, 16)
    fast = predictions(nlp, True, 4, 3)
    assert any(plain) and {e[2] for doc in plain for e in doc} == {"PERSON"}
    assert_same(fast, plain)
