"""Copy a saved adapter's weights without its card, so that a component with another template
can start from them (model.start = the copy): e.g. ner.v3 from the ner.v1 general adapter.

    python scripts/warm_start.py ../spacy_cllmfs/adapters/general-ner.v1 training/joint-start

The base model's fingerprint (base_model.json) travels with the weights and is still checked.
"""
import shutil
import sys
from pathlib import Path

FILES = ("adapter_config.json", "adapter_model.safetensors", "base_model.json")


def main(source: str, target: str) -> None:
    source_dir, target_dir = Path(source), Path(target)
    missing = [name for name in FILES if not (source_dir / name).is_file()]
    if missing:
        sys.exit(f"{source_dir} is not a saved adapter: it lacks {missing}.")
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(source_dir / name, target_dir / name)
    print(f"{source_dir} -> {target_dir} ({', '.join(FILES)})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
