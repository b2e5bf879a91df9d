"""The bundled explainers; importing this package registers them.

Every public module of this package is imported, so a new bundled explainer is one file here:
its `@register_explainer` makes it known to `get_explainer`, `--methods all` and the contract
test, and its class is exported below under its own name.
"""

import importlib
import pkgutil

from xai_gen.explainer import explainer_class, list_explainers

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

#: The registered classes defined in this package, by class name.
_BUNDLED = {
    cls.__name__: cls
    for cls in map(explainer_class, list_explainers())
    if cls.__module__.startswith(f"{__name__}.")
}
globals().update(_BUNDLED)
__all__ = sorted(_BUNDLED)
