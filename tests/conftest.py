import pytest

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
