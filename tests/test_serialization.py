import json

import pytest
import spacy

from spacy_cllmfs import AdapterError

from .util import TINY, TRAIN, ents


@pytest.fixture(scope="module")
def saved(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline")
    trained_nlp.to_disk(path)
    return path


def test_adapter_is_stored_in_peft_format(saved):
    folder = saved / "cllmfs_ner" / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "base_model.json",
    ]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-random-llama-0"
    assert config["r"] == 32 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    }
    # The pipeline folder holds no base weights.
    sizes = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
    assert sizes < 2_000_000


def test_round_trip_gives_identical_entities_and_scores(trained_nlp, saved):
    nlp2 = spacy.load(saved)
    texts = [t for t, _ in TRAIN]
    assert [ents(d) for d in nlp2.pipe(texts)] == [ents(d) for d in trained_nlp.pipe(texts)]


def test_bytes_round_trip(trained_nlp):
    nlp2 = spacy.blank("en").from_config(trained_nlp.config)
    nlp2.from_bytes(trained_nlp.to_bytes())
    texts = [t for t, _ in TRAIN]
    assert [ents(d) for d in nlp2.pipe(texts)] == [ents(d) for d in trained_nlp.pipe(texts)]


def test_adapter_refuses_another_base_model(saved):
    with pytest.raises(AdapterError, match="tiny-random-llama-0"):
        spacy.load(saved, config={"components": {"cllmfs_ner": {"model": {"base_model": {**TINY, "seed": 1}}}}})


def test_corrupted_adapter_is_a_clear_error(saved, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    weights = copy / "cllmfs_ner" / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdapterError, match="corrupted"):
        spacy.load(copy)


def test_labels_differing_from_the_config_are_refused(saved):
    with pytest.raises(AdapterError, match="labels"):
        spacy.load(saved, config={"components": {"cllmfs_ner": {"labels": ["PERSON", "LOC"]}}})


def test_a_loaded_pipeline_trains_further(trained_nlp, tmp_path):
    import torch
    from thinc.api import Adam

    from .util import UNSEEN as new, examples

    trained_nlp.to_disk(tmp_path)
    nlp = spacy.load(tmp_path)
    pipe = nlp.get_pipe("cllmfs_ner")
    # The same adapter weights as the pipeline that was saved, bit for bit ...
    saved = dict(trained_nlp.get_pipe("cllmfs_ner").language_model.lm.named_parameters())
    lora = {n: p for n, p in pipe.language_model.lm.named_parameters() if "lora_" in n}
    assert lora and all(torch.equal(p, saved[n]) for n, p in lora.items())
    # ... so the same loss, up to float rounding: the in-memory pipeline has decoded with its
    # adapter merged into the base weights, and unmerging restores those weights only up to
    # rounding (a relative difference of about 1e-6 in the loss, seen in CI).
    loaded, _ = pipe.get_loss(examples(nlp))
    assert loaded == pytest.approx(trained_nlp.get_pipe("cllmfs_ner").get_loss(examples(nlp))[0],
                                   rel=1e-5)
    # Sentences it has not seen: the saved pipeline sits near a minimum of TRAIN's loss, where a
    # fresh optimizer's first steps may go up as well as down; on new data the loss has room to
    # fall.
    before, _ = pipe.get_loss(examples(nlp, new))
    lm = pipe.language_model.lm
    weights = {n: p.detach().clone() for n, p in lm.named_parameters()}
    # LoRA dropout and the contrastive noise draw from the global generators: fixed here, so that
    # the test does not depend on what the tests before it consumed.
    spacy.util.fix_random_seed(0)
    optimizer = Adam(0.001)
    for _ in range(5):
        nlp.update(examples(nlp, new), sgd=optimizer)
    after, _ = pipe.get_loss(examples(nlp, new))
    assert after < 0.9 * before  # it learns from where it stopped
    changed = {n for n, p in lm.named_parameters() if not p.detach().equal(weights[n])}
    assert changed and all("lora_" in n for n in changed)


def test_an_interrupted_save_leaves_the_last_adapter_whole(trained_nlp, tmp_path, monkeypatch):
    from spacy_cllmfs import adapter

    trained_nlp.to_disk(tmp_path)
    before = (tmp_path / "cllmfs_ner" / "adapter" / "adapter_model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as when spacy train is stopped while saving

    monkeypatch.setattr(adapter, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        trained_nlp.to_disk(tmp_path)
    folder = tmp_path / "cllmfs_ner" / "adapter"
    assert (folder / "adapter_model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "cllmfs_ner").iterdir()) == ["adapter", "cfg"]
    assert [ents(d) for d in spacy.load(tmp_path).pipe(["Tim Cook."])] == [
        ents(d) for d in trained_nlp.pipe(["Tim Cook."])
    ]


def test_a_nan_loss_skips_the_batch_and_leaves_the_weights(trained_nlp, monkeypatch):
    import copy

    import torch
    from thinc.api import Adam

    from .util import examples

    nlp = copy.deepcopy(trained_nlp)
    pipe = nlp.get_pipe("cllmfs_ner")
    lm = pipe.language_model.lm
    before = {n: p.detach().clone() for n, p in lm.named_parameters() if p.requires_grad}
    from spacy_cllmfs.loss import CLLMFSLoss

    class NaNInSecondPass(CLLMFSLoss):
        """A finite first pass, then NaN: the first pass's gradient must not land either."""

        def passes(self, lm, rows, pad_id, *, training, max_tokens):
            found = super().passes(lm, rows, pad_id, training=training, max_tokens=max_tokens)
            yield next(found)
            yield torch.tensor(float("nan")), {}

    monkeypatch.setattr(pipe, "loss", NaNInSecondPass())
    with pytest.warns(RuntimeWarning, match="is nan; the batch is skipped"):
        losses = nlp.update(examples(nlp), sgd=Adam(0.01))
    assert losses["cllmfs_ner"] == 0.0
    after = dict(lm.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert all(p.grad is None or not p.grad.any() for p in after.values())
