"""Errors the package raises, each naming the problem and the fix."""


class CLLMFSError(Exception):
    """Base class of this package's errors."""


class BaseModelError(CLLMFSError, OSError):
    """The base model could not be found or loaded."""


class AdapterError(CLLMFSError, ValueError):
    """A saved adapter is missing, corrupted, or belongs to another base model or label set."""


class SamplingError(CLLMFSError, ValueError):
    """The data cannot give the requested N-way K-shot training set."""


class CorpusError(CLLMFSError, ValueError):
    """A file of annotated documents cannot be read (e.g. it is not a DocBin)."""
