"""project/scripts/calibrate.py: thresholds swept on a dev set."""
import argparse
import json

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs.scoring import strict_scores, unannotated

from .util import TRAIN, examples, load_script


def test_calibrate_sweeps_thresholds_below_the_pipelines_own(trained_nlp, tmp_path):
    """It decodes with every entity kept, so its threshold-0 cell is what the pipeline scores
    with threshold 0, whatever threshold it was saved with (here 1.0, which drops every
    entity), and its cell at the saved threshold is what the saved pipeline scores."""
    trained_nlp.to_disk(tmp_path / "trained")

    def loaded(threshold):
        return spacy.load(tmp_path / "trained", config={"components": {"cllmfs_ner": {
            "decoding": {"threshold": threshold}}}})

    strict = tmp_path / "strict"
    loaded(1.0).to_disk(strict)
    dev = tmp_path / "dev.spacy"
    gold = [eg.reference for eg in examples(trained_nlp, TRAIN)]
    DocBin(docs=gold).to_disk(dev)
    out = tmp_path / "calibrate.json"
    load_script("calibrate").main(argparse.Namespace(
        output=out, dev=dev, pipelines=[strict], limit=0, answer_thresholds=[0.5]))
    swept = srsly.read_json(out)["pipelines"][str(strict)]["0.5"]

    for threshold, name in ((0.0, "0.0"), (0.1, "0.1")):
        nlp = loaded(threshold)
        assert nlp.get_pipe("cllmfs_ner").decoding.answer_threshold == 0.5  # as swept
        predicted = list(nlp.pipe(unannotated(gold, nlp.vocab)))
        if threshold == 0.0:
            assert sum(len(doc.ents) for doc in predicted) > 0
        expected = strict_scores(gold, predicted, nlp.get_pipe("cllmfs_ner").labels)
        assert swept[name] == json.loads(json.dumps(expected))
    assert swept["0.0"]["f1"] > 0  # the saved threshold (1.0) would have dropped them all
    assert swept["0.9"]["recall"] <= swept["0.0"]["recall"]  # a higher bar keeps fewer
