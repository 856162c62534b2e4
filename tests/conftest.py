import pytest

from .util import tiny_nlp, train


@pytest.fixture(scope="session")
def trained_nlp():
    """A tiny pipeline trained to overfit util.TRAIN, so that it predicts entities."""
    return train(tiny_nlp())
