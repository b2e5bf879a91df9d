"""`build_bundle`: train every component of a bundle with its recipe and write it with its provenance.

Each file `<out>/<dataset>/<component>.safetensors` carries, besides the recipe's own
metadata, `meta["provenance"]`: recipe, full config, data signature (data set, size, seed,
split; the class pair for the conditional parts), package version, wall time, hardware (CPU
model and threads, or GPU) and the quality figures measured on held-out data at the end of
training (`xai_gen.bundles.quality`). The same seed on the same device and thread count
trains the same weights; checkpoints go to `work_dir`, so a killed build resumes.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xai_gen._core.devices import resolve_device
from xai_gen._io import save_tensors
from xai_gen._version import __version__
from xai_gen.bundles import quality
from xai_gen.bundles.shipped import load_component
from xai_gen.bundles.spec import (
    ORACLE_KIND,
    PAIRS,
    Component,
    components,
    load_data,
    signature,
)
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


def prepare_data(dataset: str) -> dict[str, Tensor]:
    """Training / held-out tensors of a bundle: `x, y, xt, yt`, the pair `xb, yb, xbt, ybt`
    (labels 0 / 1) and, for CXR, the continuous `target`, `target_t`."""
    train, test = load_data(dataset)
    negative, positive = PAIRS[dataset]
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
        return save_tensors(path, model.state_dict(), ORACLE_KIND, {"architecture": model.spec}, model.meta)
    if isinstance(model, SmallCNN):
        return save_classifier(model, path, meta=model.meta)
    raise TypeError(f"cannot save component {comp.name!r} of type {type(model).__name__}")


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
        only: train just these components; the others are loaded from `out_dir` (they
            must be there and current).

    Returns:
        component -> its provenance (as written into the file).
    """
    dev = resolve_device(device)
    parts_spec = components(dataset, preset)
    names = [c.name for c in parts_spec]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ValueError(f"only names unknown component(s) {unknown}; the {dataset} bundle has {names}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        data = prepare_data(dataset)
        out = Path(out_dir) / dataset
        parts: dict[str, nn.Module] = {}
        written: dict[str, dict[str, Any]] = {}
        for comp in parts_spec:
            if only is not None and comp.name not in only:
                # Not retrained: the components trained after it may need it.
                if (out / f"{comp.name}.safetensors").is_file():
                    parts[comp.name] = load_component(dataset, comp.name, Path(out_dir), preset).to(dev)
                continue
            missing = [d for d in (*comp.depends, "classifier") if d not in parts and d != comp.name]
            if missing:
                raise ValueError(f"{dataset}/{comp.name} needs {missing}: train them too or put them in {out}")
            start = time.perf_counter()
            model = _train(comp, parts, data, Path(work_dir) / preset / dataset / comp.name,
                           {"progress": progress, "device": dev, "data": signature(dataset, comp.name),
                            "resume": True})
            # A resumed build only times its last part here; the training loops sum their
            # time over every resumption.
            wall = max(time.perf_counter() - start, training_seconds(model))
            model.eval()
            reference = {**parts, comp.name: model} if comp.name == "classifier" else parts
            figures = quality.measure(comp.name, model, reference, data)
            prov = {
                "recipe": comp.recipe,
                "config": comp.config_dict(),
                "data": signature(dataset, comp.name),
                "preset": preset,
                "package_version": __version__,
                "wall_seconds": round(wall, 1),
                "hardware": hardware(dev),
                "quality": figures,
            }
            model.meta = {**getattr(model, "meta", {}), "provenance": prov}
            save_component(model, comp, out / f"{comp.name}.safetensors")
            parts[comp.name] = model
            written[comp.name] = prov
            if progress:
                print(f"{dataset}/{comp.name}: {wall:.0f} s, {figures}", flush=True)
    finally:
        torch.set_num_threads(before)
    return written
