"""The bundled copy of CLINC150, found through :mod:`importlib.resources`."""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources

import pyarrow as pa

#: The data set's splits, in the order rows appear in :func:`load_clinc150`.
CLINC_SPLITS: tuple[str, ...] = ("train", "val", "test", "oos_train", "oos_val", "oos_test")
#: The label of out-of-scope utterances.
OOS_INTENT = "oos"


@functools.cache
def load_clinc150() -> pa.Table:
    """Load the bundled CLINC150 data set.

    CLINC150, Larson et al., *An Evaluation Dataset for Intent Classification and Out-of-Scope
    Prediction*, EMNLP-IJCNLP 2019, CC BY 3.0, from the public repository clinc/oos-eval. The
    copy ships inside the package (``assay/synth/data``) and is read with
    :mod:`importlib.resources`, so it works from a wheel without network access.

    Returns
    -------
    pyarrow.Table
        One row per utterance (22,500 in-scope plus 1,200 out-of-scope), in the order of the
        original file, with the columns ``text`` (string), ``intent`` (string; ``"oos"`` for
        out-of-scope), ``domain`` (string; ``"oos"`` for out-of-scope) and ``split`` (one of
        ``train``, ``val``, ``test``, ``oos_train``, ``oos_val``, ``oos_test``). The same
        table object is returned on every call (Arrow tables are immutable).

    Examples
    --------
    >>> from assay.synth import load_clinc150
    >>> t = load_clinc150()
    >>> t.num_rows
    23700
    >>> sorted(set(t.column("split").to_pylist()))
    ['oos_test', 'oos_train', 'oos_val', 'test', 'train', 'val']
    """
    data_dir = resources.files("assay.synth").joinpath("data")
    raw = json.loads(gzip.decompress(data_dir.joinpath("data_full.json.gz").read_bytes()))
    domains: dict[str, list[str]] = json.loads(data_dir.joinpath("domains.json").read_text("utf-8"))
    domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
    domain_of[OOS_INTENT] = OOS_INTENT
    texts: list[str] = []
    intents: list[str] = []
    splits: list[str] = []
    for split in CLINC_SPLITS:
        for text, intent in raw[split]:
            texts.append(text)
            intents.append(intent)
            splits.append(split)
    return pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "intent": pa.array(intents, pa.string()),
            "domain": pa.array([domain_of[i] for i in intents], pa.string()),
            "split": pa.array(splits, pa.string()),
        }
    )
