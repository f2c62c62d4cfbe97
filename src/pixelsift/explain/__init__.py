"""What a network looked at: class activation maps for classifiers and trained models.

    >>> import pixelsift
    >>> results = pixelsift.explain("cat.jpg", k=2, save="explained/")    # doctest: +SKIP
    >>> results.to_pandas()                                              # doctest: +SKIP

`pixelsift.explain(...)` and `pixelsift.explain.explain(...)` are the same function. Importing this
package imports neither torch nor pytorch-grad-cam; building an `Explainer` does.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from pixelsift.explain.api import Explainer, Explanation, Explanations, explain
from pixelsift.explain.cam import METHODS

__all__ = ["METHODS", "Explainer", "Explanation", "Explanations", "explain"]


class _CallableModule(types.ModuleType):
    """Lets `pixelsift.explain(paths)` work while `pixelsift.explain` is also this package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
