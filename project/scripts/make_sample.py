"""Write the bundled sample data: two small invented domains in CoNLL/IOB (token TAB tag).

Every sentence is generated here from templates and names written for this project; no
sentence comes from any data set. Usage: python scripts/make_sample.py OUTPUT_DIR (writes OUTPUT_DIR/<domain>/<split>.iob)
"""
import random
import sys
from pathlib import Path

DOMAINS = {
    "news": {
        "labels": {
            "PERSON": ["Ana Ruiz", "Tomas Berg", "Keiko Sato", "Omar Haddad", "Lena Vogel",
                       "Ravi Menon", "Grace Obi", "Pavel Novak", "Sofia Costa", "Jonah Reed"],
            "ORG": ["Northwind Labs", "Bluebay Bank", "the Harbor Council", "Kestrel Air",
                    "Meridian Health", "Orbit Foods", "the Civic Trust", "Vantage Motors"],
            "LOC": ["Lagos", "Oslo", "Quito", "Hanoi", "Porto", "Nairobi", "Tbilisi", "Perth"],
        },
        "templates": [
            "{PERSON} joined {ORG} in {LOC} last spring .",
            "{ORG} will open a new office in {LOC} , said {PERSON} .",
            "{PERSON} met {PERSON} in {LOC} to discuss the merger .",
            "Shares of {ORG} rose after the plant in {LOC} reopened .",
            "The mayor of {LOC} thanked {ORG} for the donation .",
            "{PERSON} left {ORG} after ten years .",
            "Flights from {LOC} to {LOC} were delayed on Monday .",
            "Nobody expected the storm to last this long .",
            "{ORG} and {ORG} signed a deal in {LOC} .",
            "According to {PERSON} , the talks went well .",
        ],
    },
    "recipes": {
        "labels": {
            "DISH": ["lentil soup", "shakshuka", "mushroom risotto", "banana bread", "pad thai",
                     "apple crumble", "fish tacos", "vegetable curry"],
            "INGREDIENT": ["garlic", "fresh basil", "brown sugar", "olive oil", "red onion",
                           "coconut milk", "smoked paprika", "lemon zest", "rice flour"],
            "TOOL": ["cast iron pan", "whisk", "food processor", "baking tray", "wok",
                     "slow cooker"],
        },
        "templates": [
            "Stir the {INGREDIENT} into the {DISH} just before serving .",
            "For the {DISH} you need {INGREDIENT} , {INGREDIENT} and a {TOOL} .",
            "Heat the {TOOL} and toast the {INGREDIENT} for two minutes .",
            "Our {DISH} tastes better with a pinch of {INGREDIENT} .",
            "Blend the {INGREDIENT} in a {TOOL} until smooth .",
            "Leftover {DISH} keeps for three days in the fridge .",
            "Let everything rest for ten minutes .",
            "Swap the {INGREDIENT} for {INGREDIENT} if you like .",
            "Bake the {DISH} on a {TOOL} at medium heat .",
        ],
    },
}
SIZES = {"train": 60, "dev": 12, "test": 30}


def sentence(rng, domain):
    template = rng.choice(domain["templates"])
    rows = []
    for piece in template.split():
        if piece.startswith("{") and piece.endswith("}"):
            label = piece[1:-1]
            words = rng.choice(domain["labels"][label]).split()
            rows += [(w, ("B-" if i == 0 else "I-") + label) for i, w in enumerate(words)]
        else:
            rows.append((piece, "O"))
    return rows


def main(out_dir: str, seed: int = 0) -> None:
    rng = random.Random(seed)
    for name, domain in DOMAINS.items():
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        for split, size in SIZES.items():
            sents = [sentence(rng, domain) for _ in range(size)]
            text = "\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sents)
            (folder / f"{split}.iob").write_text(text + "\n", encoding="utf8")
        print(f"Wrote {folder} ({', '.join(f'{k}: {v}' for k, v in SIZES.items())} sentences)")


if __name__ == "__main__":
    main(sys.argv[1])
