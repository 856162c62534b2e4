"""Fail at once, with the install line, when a workflow needs an optional dependency that is
not installed (rather than after an hour of training).

Usage: python scripts/check_optional.py MODULE [MODULE ...]   e.g. matplotlib spacy_llm ray
"""
import importlib.util
import sys

INSTALL = {
    "matplotlib": 'pip install "spacy-cllmfs[llm]"  (or: pip install "matplotlib>=3.5")',
    "spacy_llm": 'pip install "spacy-cllmfs[llm]"  (from a clone: pip install -e ".[llm]")',
    "ray": 'pip install "spacy-cllmfs[ray]"  (from a clone: pip install -e ".[ray]")',
}

missing = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is None]
if missing:
    lines = "\n".join(f"  {name}: {INSTALL.get(name, 'pip install ' + name)}" for name in missing)
    raise SystemExit(f"This workflow needs what is not installed:\n{lines}")
