"""Load an installed pipeline package without network access and run it on one sentence.

Usage: python scripts/check_package.py PACKAGE_NAME "A sentence to tag."
"""
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"  # the package must not need the hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import spacy  # noqa: E402

nlp = spacy.load(sys.argv[1])
doc = nlp(sys.argv[2])
print(f"{sys.argv[1]} loaded offline; entities: {[(e.text, e.label_) for e in doc.ents]}")
