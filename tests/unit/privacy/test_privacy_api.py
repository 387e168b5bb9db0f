"""The public surface of ``assay.privacy`` and its docstring examples."""

from __future__ import annotations

import doctest

import pytest

import assay.privacy
import assay.privacy._pseudonym
import assay.privacy._redact


def test_all_lists_exactly_the_importable_public_names() -> None:
    for name in assay.privacy.__all__:
        assert hasattr(assay.privacy, name), name
    public = {name for name in vars(assay.privacy) if not name.startswith("_")}
    assert public == set(assay.privacy.__all__)
    assert {
        "PLACEHOLDERS",
        "redact_array",
        "redact_text",
        "pseudonym",
        "pseudonymise",
        "new_key",
    } <= set(assay.privacy.__all__)


@pytest.mark.parametrize("module", [assay.privacy._redact, assay.privacy._pseudonym])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
