"""Reading annotated documents: spaCy DocBins (.spacy), with an error that says what to do."""
from pathlib import Path
from typing import List

from spacy.tokens import Doc, DocBin

from .errors import CorpusError


def read_docs(path, vocab) -> List[Doc]:
    """The docs of a .spacy file, with an error that says what to do if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No DocBin at {path}. Convert your data with spacy convert.")
    try:
        return list(DocBin().from_disk(path).get_docs(vocab))
    except Exception as err:  # msgpack, zlib and key errors all mean "not a DocBin"
        raise CorpusError(
            f"{path} is not a spaCy DocBin (.spacy) file ({type(err).__name__}: {err}). "
            f"Convert CoNLL/IOB data with `python -m spacy convert FILE OUT_DIR -c ner`."
        ) from err
