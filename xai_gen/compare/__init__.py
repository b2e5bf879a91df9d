"""Compare explainers: every method on the same samples, every metric that applies, the cost.

`xai_gen.compare` is this package and, called, the function `compare`: `xg.compare(explainers,
model, data)` runs `xai_gen.compare.compare`, while `import xai_gen.compare as m` gives the
package and `from xai_gen.compare import compare` the function.

* `runner`: `compare`, which explains, times and scores each method;
* `result`: `ComparisonResult` (what was measured) and `mean_ci` (its statistics);
* `report`: the markdown tables, the index of a multi-data-set run and the report files;
* `data`: `ComparisonData`, what a comparison reads from a data set;
* `explainers`: `make_explainers`, registered explainers built by name.
"""

import sys
import types
from typing import Any

from xai_gen.compare.data import ComparisonData
from xai_gen.compare.explainers import make_explainers
from xai_gen.compare.result import ComparisonResult, mean_ci
from xai_gen.compare.runner import compare

__all__ = ["ComparisonData", "ComparisonResult", "compare", "make_explainers", "mean_ci"]


class _CallablePackage(types.ModuleType):
    """`xai_gen.compare(...)` calls the function of the same name.

    The package `xai_gen` exports this package as `compare`; binding the function there
    instead would hide the package from `import xai_gen.compare as m`.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> ComparisonResult:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
# `inspect.signature(xai_gen.compare)` and `help` follow `__wrapped__` to the function.
__wrapped__ = compare
