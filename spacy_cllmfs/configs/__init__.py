"""Training configs shipped with the package, for plain `spacy train`.

    python -m spacy_cllmfs.configs                   # lists them
    python -m spacy_cllmfs.configs fewshot OUT.cfg   # writes one (no OUT: prints it)
"""
from importlib import resources
from pathlib import Path


def names():
    return sorted(p.name[: -len(".cfg")] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".cfg"))


def path(name: str) -> Path:
    """The shipped config `name` (e.g. "fewshot") as a file path."""
    found = resources.files(__name__) / f"{name}.cfg"
    if not found.is_file():
        raise ValueError(f"No shipped config {name!r}; the package ships {names()}.")
    return Path(str(found))


def resolve(name_or_path) -> Path:
    """A config file's path as given, or, for a name such as "fewshot", the shipped one."""
    given = Path(name_or_path)
    if given.suffix == ".cfg" or given.is_file():
        if not given.is_file():
            raise ValueError(f"No config file at {given}.")
        return given
    return path(str(name_or_path))


def name_of(config_path) -> str:
    """The inverse of resolve for reports: a shipped config's name ("fewshot"), so that the
    same setting reads the same on every machine, else the path as given."""
    given = Path(config_path)
    if given.suffix == ".cfg" and given.stem in names() and given.resolve() == path(
            given.stem).resolve():
        return given.stem
    return str(config_path)
