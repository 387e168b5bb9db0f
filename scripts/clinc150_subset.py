"""Write src/assay/data/clinc150/data_small.json: a small, deterministic CLINC150 subset.

The first intent of each of the 10 domains (domains.json order), 20 train utterances of each
and 4 of each in val and test (file order), with the first 20 / 10 / 20 out-of-scope
utterances of oos_train / oos_val / oos_test. Run from the repository root:

    PYTHONPATH=src .venv/bin/python scripts/clinc150_subset.py
"""

from __future__ import annotations

import json
from pathlib import Path

from assay.models._intent_data import subset

FOLDER = Path("src/assay/data/clinc150")


def main() -> None:
    full = json.loads((FOLDER / "data_full.json").read_text(encoding="utf-8"))
    domains = json.loads((FOLDER / "domains.json").read_text(encoding="utf-8"))
    intents = [names[0] for names in domains.values()]
    small = subset(
        full,
        intents=intents,
        per_intent=20,
        oos_per_split={"oos_train": 20, "oos_val": 10, "oos_test": 20},
    )
    text = json.dumps(small, indent=1, ensure_ascii=False) + "\n"
    (FOLDER / "data_small.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
