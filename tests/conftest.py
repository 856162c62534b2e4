import pytest
from spacy.util import fix_random_seed

from .util import tiny_nlp, train


@pytest.fixture(scope="session")
def trained_nlp():
    """A tiny pipeline trained to overfit util.TRAIN, so that it predicts entities."""
    return train(tiny_nlp())


@pytest.fixture(scope="session")
def trained_joint_nlp():
    """The same with the joint template ner.v3: one question per text, every type answered
    under its name."""
    return train(tiny_nlp(template="ner.v3"))


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same random state (Python, NumPy, torch), whatever ran
    before it: results do not depend on the order or selection of tests."""
    fix_random_seed(0)
