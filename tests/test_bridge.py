"""The spacy-llm bridge: spacy-llm's `llm` component with `spacy.NER.v3` on the component's
model (tiny random Llama, with and without a trained adapter)."""
import pytest
import spacy
import torch

from .util import TINY, examples

spacy_llm = pytest.importorskip("spacy_llm")
from spacy_llm.registry import registry as llm_registry  # noqa: E402

HEAD = "Extract every entity of the type below from the text.\n### Text:\n"
TEXTS = [
    "Maria Lopez flew from Madrid.",
    "Apple opened offices in Berlin last year.",
    "The city council of Lagos",
    "Tim",
    "Kenji Watanabe joined Acme Robotics as chief engineer in March.",
]


def bridge(**config):
    make = llm_registry.llm_models.get("spacy_cllmfs.CLLMFS.v1")
    return make(base_model=spacy.util.registry.resolve({"m": TINY})["m"], **config)


def plain(model, prompt):
    """What transformers' generate writes for one prompt alone, without any cache."""
    tok = model.language_model.tokenizer
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    out = model.language_model.lm.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=model.max_new_tokens,
        do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        stop_strings=model.stop, tokenizer=tok,
    )
    return model._cut(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))


def test_shared_prefix_generation_equals_plain_generate():
    model = bridge(max_new_tokens=12, batch_size=2, stop=["\n\n"])
    prompts = [HEAD + text + "\n### Response:" for text in TEXTS]
    batched = model.generate(prompts)
    # The prefix computed for the first batch served the later ones (a 1-prompt batch too).
    assert len(model.prefix.ids) >= len(model.language_model.tokenizer(HEAD)["input_ids"]) - 1
    assert batched == [plain(model, p) for p in prompts]
    assert all(isinstance(r, str) for r in batched)


def test_responses_keep_the_nesting_of_the_prompts():
    model = bridge(max_new_tokens=4, batch_size=3)
    prompts = [[HEAD + "a"], [HEAD + "b", HEAD + "c"], [], [HEAD + "d"]]
    out = model(prompts)
    assert [len(r) for r in out] == [1, 2, 0, 1]
    assert out[1] == model.generate([HEAD + "b", HEAD + "c"])


def test_context_length_leaves_room_for_the_answer():
    model = bridge(max_new_tokens=16)
    assert model.context_length == model.language_model.lm.config.max_position_embeddings - 16


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_new_tokens"):
        bridge(max_new_tokens=0)


def llm_nlp(adapter=None, save_io=True):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "llm",
        config={
            "task": {"@llm_tasks": "spacy.NER.v3", "labels": ["PERSON", "ORG"]},
            "model": {"@llm_models": "spacy_cllmfs.CLLMFS.v1", "base_model": TINY,
                      "adapter": adapter, "max_new_tokens": 8},
            "save_io": save_io,
        },
    )
    return nlp


def test_spacy_llm_ner_runs_on_the_component_model_with_few_shot_examples():
    nlp = llm_nlp()
    egs = examples(nlp)
    # As `[initialize.components.llm] n_prompt_examples = -1` does: every shot is an example.
    nlp.config["initialize"]["components"]["llm"] = {"n_prompt_examples": -1}
    nlp.initialize(lambda: egs)
    texts = ["Ana Ruiz joined Orbit Foods.", "Nothing to see here.", ""]
    docs = list(nlp.pipe(texts, batch_size=2))
    assert [d.text for d in docs] == texts
    for doc in docs:
        assert {e.label_ for e in doc.ents} <= {"PERSON", "ORG"}
        io = doc.user_data["llm_io"]["llm"]
        assert len(io["prompt"]) == len(io["response"]) == 1  # one shard: short docs
        prompt = io["prompt"][0]
        # The K shots are the in-context examples, and the doc's text ends the prompt.
        assert "Tim Cook said Apple will open an office in Lagos." in prompt
        assert "Tim Cook | True | PERSON" in prompt
        assert prompt.endswith(f"Paragraph: {doc.text}\nAnswer:")
    model = nlp.get_pipe("llm")._model
    io = docs[0].user_data["llm_io"]["llm"]
    assert io["response"] == model.generate(io["prompt"])


def test_the_bridge_runs_a_trained_adapter(trained_nlp, tmp_path):
    trained_nlp.to_disk(tmp_path / "pipeline")
    folder = tmp_path / "pipeline" / "cllmfs_ner" / "adapter"
    tuned, base = bridge(adapter=str(folder), max_new_tokens=6), bridge(max_new_tokens=6)
    prompt = HEAD + TEXTS[0] + "\n### Response:"
    tuned_out = tuned.generate([prompt])
    # The same weights as the trained pipe: its own LoRA model writes the same answer.
    pipe = trained_nlp.get_pipe("cllmfs_ner")
    reference = bridge(max_new_tokens=6)
    reference._ensure_model()
    reference.language_model.lm = pipe.language_model.lm
    assert tuned_out == [plain(reference, prompt)]
    assert tuned_out != base.generate([prompt])


def test_an_adapter_of_another_base_is_refused(trained_nlp, tmp_path):
    from spacy_cllmfs.errors import AdapterError

    trained_nlp.to_disk(tmp_path / "pipeline")
    make = llm_registry.llm_models.get("spacy_cllmfs.CLLMFS.v1")
    other = spacy.util.registry.resolve({"m": {**TINY, "seed": 7}})["m"]
    model = make(base_model=other, adapter=str(tmp_path / "pipeline" / "cllmfs_ner" / "adapter"))
    with pytest.raises(AdapterError, match="trained on the base model"):
        model.generate(["x"])
