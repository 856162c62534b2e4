import subprocess
import sys

SCRIPT = """
import sys, spacy
nlp = spacy.blank("en")
nlp.add_pipe("cllmfs_ner", config={"labels": ["PERSON"], "model": {"base_model": {"@misc": "spacy_cllmfs.TinyLlama.v1"}}})
assert "spacy_cllmfs" in sys.modules  # found through the entry point, not an import
doc = nlp("Ana met Bo.")
print("ok", [e.label_ for e in doc.ents])
"""


def test_fresh_interpreter_finds_the_factory_without_import():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
