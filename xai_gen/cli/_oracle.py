"""The oracle classifier of the comparison: the bundle's, or a stand-in trained here and cached.

Oracle agreement asks a second classifier whether a counterfactual really shows the contrast
class. It must be trained apart from the explained classifier: another architecture and seed,
so that it does not share the explained model's blind spots. Bundles that carry an `oracle`
supply it; for a bundle without one, `oracle_for` trains the classifier recipe with a wider
network and another seed (`ORACLE_CONFIG`) once and caches it under `<cache>/oracle/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from xai_gen.models import load_classifier
from xai_gen.recipes import ClassifierConfig, train_classifier
from xai_gen.recipes._loop import config_dict

#: The stand-in oracle: the classifier recipe at twice the bundled classifier's width, a
#: wider penultimate layer and another seed, within half a minute of training.
ORACLE_CONFIG = ClassifierConfig(width=32, hidden=128, seed=1, minutes=0.5)


def _cached(path: Path, data: dict[str, Any]) -> nn.Module | None:
    """The cached oracle at `path` if it was trained with `ORACLE_CONFIG` on `data`."""
    if not path.is_file():
        return None
    try:
        model = load_classifier(path)
    except ValueError:
        return None
    meta = getattr(model, "meta", {}) or {}
    saved = {k: v for k, v in meta.get("config", {}).items() if k != "checkpoint_seconds"}
    wanted = {k: v for k, v in config_dict(ORACLE_CONFIG).items() if k != "checkpoint_seconds"}
    same_data = all(meta.get("data", {}).get(k) == v for k, v in data.items())
    return model.eval() if saved == wanted and same_data else None


def oracle_for(bundle: Any, cache_dir: Path, progress: bool = True) -> nn.Module | None:
    """The oracle classifier for a data set's bundle.

    Args:
        bundle: a bundle; its `oracle` is used when it has one, else one is trained on its
            `train` split (`images`, int `labels`) and checked on `test`.
        cache_dir: the data set's cache folder; the stand-in lives in `cache_dir/oracle/`.
        progress: tqdm bar while training.

    Returns:
        The oracle in eval mode, or None for a bundle with neither an oracle nor labelled
        training data (oracle agreement is then not measured).
    """
    oracle = getattr(bundle, "oracle", None)
    if oracle is not None:
        return oracle
    train, test = getattr(bundle, "train", None), getattr(bundle, "test", None)
    labels = getattr(train, "labels", None)
    if labels is None or labels.is_floating_point() or labels.dim() != 1:
        return None
    folder = Path(cache_dir) / "oracle"
    data = {"bundle": str(getattr(bundle, "name", "")), "n": len(labels), "role": "oracle"}
    model = _cached(folder / "classifier.safetensors", data)
    if model is None:
        held_out = (test.images, test.labels) if test is not None else None
        model = train_classifier(
            train.images, labels, ORACLE_CONFIG, held_out, progress=progress, out_dir=folder, data=data
        ).eval()
    return model
