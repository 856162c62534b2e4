from setuptools import setup

# Metadata lives in pyproject.toml; this file lets older pips do editable installs.
setup()
