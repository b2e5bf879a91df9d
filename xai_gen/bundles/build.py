"""Training a bundle: each component with its recipe, written with its provenance.

One pipeline for the shipped files (`build_bundle`, `xai-gen bundle build`) and for the
bundles trained on demand (`--retrain`, `mnist_bundle(preset="fast")`): `assemble` walks the
components of `xai_gen.bundles.spec` in training order, loads each one whose file is current
and trains the others. Each file `<dir>/<dataset>/<component>.safetensors` carries, besides
the recipe's own metadata, `meta["provenance"]`: recipe, full config, data signature (data
set, size, seed, split; the class pair for the conditional parts), package version, wall
time, hardware (CPU model and threads, or GPU) and the quality figures measured on held-out
data at the end of training (`xai_gen.bundles.quality`). The same seed on the same device
and thread count trains the same weights; checkpoints go to a work folder, so a killed
build resumes.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xai_gen._core.devices import resolve_device
from xai_gen._io import save_tensors
from xai_gen._version import __version__
from xai_gen.bundles import quality, spec
from xai_gen.bundles.shipped import StaleBundleError, load_component
from xai_gen.bundles.spec import Component
from xai_gen.latent import LatentClassifier, LatentModel, nets
from xai_gen.models import SmallCNN, save_classifier
from xai_gen.recipes.autoencoder import train_autoencoder
from xai_gen.recipes.classifier import train_classifier
from xai_gen.recipes.conditional_autoencoder import train_conditional_autoencoder
from xai_gen.recipes.conditional_gan import binary_subset
from xai_gen.recipes.encoder import train_encoder
from xai_gen.recipes.heads import train_head
from xai_gen.recipes.wgan_gp import train_wgan_gp


def training_seconds(model: nn.Module) -> float:
    """Seconds the recipe's training loops ran, summed over resumptions (generator included)."""
    meta = getattr(model, "meta", {}) or {}
    return float(meta.get("seconds") or 0.0) + float((meta.get("generator") or {}).get("seconds") or 0.0)


def hardware(device: torch.device) -> dict[str, Any]:
    """Where a model was trained: device, CPU model, cores and torch threads (or the GPU's name)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"device": device.type, "cpu": cpu, "cpu_cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def prepare_data(dataset: str, splits: tuple[Any, Any] | None = None) -> dict[str, Tensor]:
    """Training / held-out tensors of a bundle: `x, y, xt, yt`, the pair `xb, yb, xbt, ybt`
    (labels 0 / 1) and, for CXR, the continuous `target`, `target_t`.

    `splits`: `(train, test)` (default: `spec.load_data(dataset)`, the shipped bundle's data)."""
    train, test = splits or spec.load_data(dataset)
    negative, positive = spec.PAIRS[dataset]
    data = {"x": train.images, "y": train.labels, "xt": test.images, "yt": test.labels}
    data["xb"], data["yb"] = binary_subset(train.images, train.labels, negative, positive)
    data["xbt"], data["ybt"] = binary_subset(test.images, test.labels, negative, positive)
    if hasattr(train, "targets"):
        data["target"], data["target_t"] = train.targets, test.targets
    return data


def oracle_network(config: Any, image_shape: tuple[int, int, int], classes: int) -> nn.Module:
    """The oracle's network: the strided SELU encoder of `nets` with one logit per class."""
    torch.manual_seed(config.seed)  # its initial weights depend on the seed alone
    return nets.build(nets.spec("dcgan_encoder", out_dim=classes, image_shape=list(image_shape), width=config.width))


def _train(comp: Component, parts: dict[str, nn.Module], data: dict[str, Tensor], work: Path, kw: dict[str, Any]) -> nn.Module:
    cfg, x, xt = comp.config, data["x"], data["xt"]
    if comp.recipe == "classifier":
        pair = comp.name == "binary_classifier"
        xs, ys = (data["xb"], data["yb"]) if pair else (x, data["y"])
        test = (data["xbt"], data["ybt"]) if pair else (xt, data["yt"])
        return train_classifier(xs, ys, cfg, test, out_dir=work, **kw)
    if comp.recipe == "oracle":
        net = oracle_network(cfg, tuple(x.shape[1:]), int(data["y"].max()) + 1)
        return train_classifier(x, data["y"], cfg, (xt, data["yt"]), out_dir=work, network=net, **kw)
    if comp.recipe == "autoencoder":
        return train_autoencoder(x, cfg, test=xt, out_dir=work, **kw)
    if comp.recipe == "head":
        regression = comp.name == "regression_head"
        targets, test = (data["target"], data["target_t"]) if regression else (data["y"], data["yt"])
        return train_head(parts["autoencoder"], x, targets, "linear", "regression" if regression else "classes",
                          cfg, (xt, test), out_dir=work, **kw)
    if comp.recipe == "conditional_autoencoder":
        return train_conditional_autoencoder(data["xb"], data["yb"], parts[comp.depends[0]], cfg,
                                             (data["xbt"], data["ybt"]), out_dir=work, **kw)
    if comp.recipe == "wgan_gp":
        generator = train_wgan_gp(x, cfg["generator"], out_dir=work / "generator", **kw)
        return train_encoder(generator, x, cfg["encoder"], out_dir=work / "encoder", **kw)
    raise ValueError(f"unknown recipe {comp.recipe!r} of component {comp.name!r}")


def save_component(model: nn.Module, comp: Component, path: Path) -> Path:
    """Write a trained component (its `meta`, provenance included) to `path`."""
    if isinstance(model, LatentModel | LatentClassifier):
        return model.save(path)
    if comp.recipe == "oracle":
        return save_tensors(path, model.state_dict(), spec.ORACLE_KIND, {"architecture": model.spec}, model.meta)
    if isinstance(model, SmallCNN):
        return save_classifier(model, path, meta=model.meta)
    raise TypeError(f"cannot save component {comp.name!r} of type {type(model).__name__}")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `torch.set_num_threads(n)` (None: unchanged); the setting is restored."""
    before = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"threads must be >= 1 or None, got {n}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def needed(dataset: str, names: Collection[str], preset: str = "full") -> set[str]:
    """`names` with the components they are trained on, and the classifier (every quality
    figure is measured in its features).

    Example:
        >>> sorted(needed("mnist", ["head"]))
        ['autoencoder', 'classifier', 'head']
    """
    order = spec.components(dataset, preset)
    wanted = {"classifier", *names}
    for comp in reversed(order):  # a component comes after those it depends on
        if comp.name in wanted:
            wanted |= set(comp.depends)
    return wanted


def dependants(dataset: str, names: Collection[str], preset: str = "full") -> set[str]:
    """`names` with every component trained on one of them, directly or not.

    Example:
        >>> sorted(dependants("synthetic-cxr", ["autoencoder"]))
        ['autoencoder', 'head', 'regression_head']
    """
    out = set(names)
    for comp in spec.components(dataset, preset):
        if out.intersection(comp.depends):
            out.add(comp.name)
    return out


def _provenance(comp: Component, model: nn.Module, parts: dict[str, nn.Module], data: dict[str, Tensor],
                info: dict[str, Any]) -> dict[str, Any]:
    """Quality figures and provenance of a freshly trained component."""
    model.eval()
    reference = {**parts, comp.name: model} if comp.name == "classifier" else parts
    return {
        "recipe": comp.recipe,
        "config": comp.config_dict(),
        "data": info["data"],
        "preset": info["preset"],
        "package_version": __version__,
        "wall_seconds": info["wall_seconds"],
        "hardware": info["hardware"],
        "quality": quality.measure(comp.name, model, reference, data),
    }


def _train_and_write(comp: Component, parts: dict[str, nn.Module], data: dict[str, Tensor], path: Path,
                     work: Path, resume: bool, kw: dict[str, Any], preset: str) -> nn.Module:
    """Train `comp` (resuming from `work` if asked and possible) and write it to `path`."""
    start = time.perf_counter()
    try:
        model = _train(comp, parts, data, work, {**kw, "resume": resume})
    except ValueError as err:
        if not resume:
            raise
        # A checkpoint of another config or a damaged one: start this component afresh.
        warnings.warn(f"cannot resume {comp.name} ({err}); training it from the start", stacklevel=3)
        model = _train(comp, parts, data, work, {**kw, "resume": False})
    # A resumed build only times its last part here; the training loops sum their time over
    # every resumption.
    wall = max(time.perf_counter() - start, training_seconds(model))
    info = {"data": kw["data"], "preset": preset, "wall_seconds": round(wall, 1), "hardware": hardware(kw["device"])}
    model.meta = {**getattr(model, "meta", {}), "provenance": _provenance(comp, model, parts, data, info)}
    save_component(model, comp, path)
    return model


def assemble(
    dataset: str,
    directory: str | Path,
    names: Collection[str] | None = None,
    preset: str = "full",
    *,
    train: Collection[str] = (),
    train_missing: bool = False,
    splits: tuple[Any, Any] | None = None,
    data: dict[str, Any] | None = None,
    work_dir: str | Path = "runs/bundle-build",
    progress: bool = True,
    threads: int | None = 1,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, nn.Module], list[str]]:
    """Load the components `names` of a bundle from `directory`, training those that must be.

    A component is trained when it is in `train`, when one it depends on was trained in this
    call, or, with `train_missing`, when its file is missing, stale (another recipe, config or
    data) or unreadable; it is then written to `directory/<dataset>/<name>.safetensors` with
    its provenance. A file of a component outside `names` that depends on one trained here is
    deleted, so that a later call trains it again rather than load it.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        directory: root of the bundle files.
        names: the components wanted (None: all); those they are trained on and the
            classifier come along.
        preset: the configs (`spec.PRESETS`).
        train: components to train even if their file is current.
        train_missing: train a missing or stale component instead of raising.
        splits: `(train, test)` data (default: `spec.load_data(dataset, data)`).
        data: the data signature (default: the shipped bundle's, `spec.data_signature`).
        work_dir: checkpoints, `<work_dir>/<preset>/<dataset>/<component>/`.
        progress: tqdm bars.
        threads: torch threads while it runs (restored afterwards; None: torch's).
        device: `"cpu"`, `"cuda"` or `"auto"`.

    Returns:
        `(parts, trained)`: component -> model (eval mode; heads share the autoencoder) and
        the names trained in this call, in training order.

    Raises:
        ValueError: a component to load is missing or stale and `train_missing` is False.
    """
    dev = resolve_device(device)
    order = spec.components(dataset, preset)
    known = [c.name for c in order]
    unknown = sorted(set(names or ()) - set(known) | set(train) - set(known))
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; the {dataset} bundle has {known}")
    wanted = needed(dataset, known if names is None else names, preset)
    data = data or spec.data_signature(dataset)
    out = Path(directory) / dataset
    parts: dict[str, nn.Module] = {}
    trained: list[str] = []
    with torch_threads(threads):
        tensors = prepare_data(dataset, splits or spec.load_data(dataset, data))
        for comp in (c for c in order if c.name in wanted):
            path = out / f"{comp.name}.safetensors"
            fresh_inputs = bool(set(trained).intersection(comp.depends))
            if comp.name not in train and not fresh_inputs:
                try:
                    parts[comp.name] = load_component(dataset, comp.name, directory, preset, data).to(dev)
                    continue
                except (FileNotFoundError, ValueError) as err:
                    if not train_missing:
                        later = ", ".join(sorted(wanted & set(train))) or "the bundle"
                        raise ValueError(f"{dataset}: {later} needs {comp.name}, which {out} "
                                         f"does not hold current ({err}): train it too or put it there") from err
                    if path.is_file() and not isinstance(err, StaleBundleError):
                        warnings.warn(f"{path} is unreadable ({err}); training {comp.name} again", stacklevel=2)
            kw = {"progress": progress, "device": dev, "data": spec.signature(dataset, comp.name, data)}
            # A build (`train`) resumes, so that a killed one goes on. Otherwise a file that is
            # there but stale was trained with another config or data: its checkpoint is no
            # start for this one; nor is one trained on an input retrained in this call.
            resume = comp.name in train or not (fresh_inputs or path.is_file())
            model = _train_and_write(comp, parts, tensors, path, Path(work_dir) / preset / dataset / comp.name,
                                     resume, kw, preset)
            parts[comp.name] = model
            trained.append(comp.name)
            if progress:
                prov = model.meta["provenance"]
                print(f"{dataset}/{comp.name}: {prov['wall_seconds']:.0f} s, {prov['quality']}", flush=True)
    for comp in order:
        if comp.name not in wanted and set(trained).intersection(comp.depends):
            (out / f"{comp.name}.safetensors").unlink(missing_ok=True)
    for name in ("head", "regression_head"):
        if name in parts:
            parts[name].latent_model = parts["autoencoder"]  # one shared copy instead of the file's
    return parts, trained


def build_bundle(
    dataset: str,
    out_dir: str | Path,
    preset: str = "full",
    work_dir: str | Path = "runs/bundle-build",
    progress: bool = True,
    threads: int | None = 1,
    device: str | torch.device = "cpu",
    only: tuple[str, ...] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train the components of a bundle and write `out_dir/<dataset>/<component>.safetensors`.

    Args:
        dataset: `"mnist"` or `"synthetic-cxr"`.
        out_dir: destination root (`xai_gen/bundles/data` rebuilds the shipped files).
        preset: `"full"` (the shipped configs) or `"fast"`.
        work_dir: checkpoints (`<work_dir>/<preset>/<dataset>/<component>/`); a killed build
            resumes from them.
        progress: tqdm bars.
        threads: torch threads while training (restored afterwards); None keeps torch's.
            The shipped files were trained with one.
        device: `"cpu"`, `"cuda"` or `"auto"`.
        only: train just these components and those trained on them; the others are
            loaded from `out_dir` (they must be there and current).

    Returns:
        component -> its provenance (as written into the file).
    """
    names = [c.name for c in spec.components(dataset, preset)]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ValueError(f"only names unknown component(s) {unknown}; the {dataset} bundle has {names}")
    chosen = names if only is None else dependants(dataset, only, preset)
    parts, trained = assemble(dataset, out_dir, chosen, preset, train=chosen, work_dir=work_dir,
                              progress=progress, threads=threads, device=device)
    return {name: parts[name].meta["provenance"] for name in trained}
