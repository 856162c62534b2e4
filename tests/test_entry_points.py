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


def test_every_registered_function_has_its_entry_point():
    """A config names these functions; without an entry point, a fresh `spacy train` or
    `spacy.load` that has not imported the package cannot resolve them."""
    import importlib
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]
    groups = {"misc": "spacy_misc", "architectures": "spacy_architectures",
              "losses": "thinc_losses", "readers": "spacy_readers", "loggers": "spacy_loggers",
              "schedules": "thinc_schedules"}
    found = 0
    for path in sorted((root / "spacy_cllmfs").glob("*.py")):
        text = path.read_text()
        for registry, name, function in re.findall(
                r'@registry\.(\w+)\("([^"]+)"\)\s*\ndef (\w+)', text):
            found += 1
            target = declared[groups[registry]].get(name)
            assert target == f"spacy_cllmfs.{path.stem}:{function}", (name, target)
            module, attribute = target.split(":")
            assert callable(getattr(importlib.import_module(module), attribute))
    assert found >= 10
