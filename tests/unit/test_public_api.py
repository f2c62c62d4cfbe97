"""Every public name of `pixelsift` resolves (they are imported lazily, so a moved module shows here)."""

from __future__ import annotations

import pytest

import pixelsift


@pytest.mark.parametrize("name", pixelsift.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(pixelsift, name) is not None
