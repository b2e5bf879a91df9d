"""`xai-gen train RECIPE`: run a training recipe on a data set and write weights + quality report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from xai_gen import recipes
from xai_gen.cli._overrides import apply_overrides
from xai_gen.data import ImageFolderDataset, ImageSplit, load_medmnist_npz, mnist_5k, synthetic_cxr
from xai_gen.latent import LatentModel
from xai_gen.models import SmallCNN, load_classifier

RECIPES = ("autoencoder", "autoencoder_kl", "wgan_gp", "encoder", "conditional_gan", "classifier", "head")
CONFIGS = {
    "autoencoder": recipes.AutoencoderConfig,
    "autoencoder_kl": recipes.AutoencoderKLConfig,
    "wgan_gp": recipes.WGANGPConfig,
    "encoder": recipes.EncoderConfig,
    "conditional_gan": recipes.ConditionalGANConfig,
    "classifier": recipes.ClassifierConfig,
    "head": recipes.HeadConfig,
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a latent model, generator, encoder, classifier or head; write weights and a report",
        description="Train one recipe of xai_gen.recipes and write <recipe>.safetensors, a resumable "
        "checkpoint and <recipe>.report.{json,md} with PNGs into --out.",
    )
    p.add_argument("recipe", choices=RECIPES, help="what to train (see xai_gen.recipes)")
    p.add_argument("--data", required=True,
                   help="mnist | synthetic-cxr | medmnist:PATH.npz | folder:DIR")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--labels", type=Path, help="CSV of labels / targets for folder:DIR")
    p.add_argument("--size", type=int, help="image side (folder: letterbox size, default 128; "
                   "synthetic-cxr: default 64; others: resize)")
    p.add_argument("--n", type=int, default=2000, help="synthetic-cxr: number of patients (default 2000)")
    p.add_argument("--minutes", type=float, help="wall-clock budget; stops cleanly when spent")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"),
                   help="where to train (auto: CUDA when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order, noise and splits")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads (default: torch's); 1 is much faster on a busy 2-core machine")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config field, e.g. --set epochs=50 --set encoder.epochs=5 (repeatable)")
    p.add_argument("--generator", type=Path, help="encoder: generator file (default OUT/generator.safetensors)")
    p.add_argument("--latent", type=Path, help="head: latent model file (default OUT/autoencoder.safetensors)")
    p.add_argument("--classifier", type=Path,
                   help="conditional_gan: frozen binary classifier file (default: train one into OUT/binary_classifier)")
    p.add_argument("--reference", type=Path,
                   help="classifier for the Frechet distances of the report (default OUT/classifier.safetensors if present)")
    p.add_argument("--negative", type=int, help="conditional_gan: negative class (mnist: 4, else 0)")
    p.add_argument("--positive", type=int, help="conditional_gan: positive class (mnist: 9, else 1)")
    p.add_argument("--kind", default="linear", choices=("linear", "mlp"), help="head: kind")
    p.add_argument("--task", default="classes", choices=("classes", "regression"), help="head: task")
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress bars")
    return p


# -- data ---------------------------------------------------------------------------------
def _resize(split: ImageSplit, size: int | None) -> ImageSplit:
    if size is None or split.images.shape[-1] == size:
        return split
    images = F.interpolate(split.images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return ImageSplit(images.clamp(-1, 1), split.labels)


def load_data(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """`(train, test, info)`: splits with `.images` `(N, C, S, S)` and `.labels` (and `.targets` for CXR)."""
    spec = args.data
    if spec == "mnist":
        d = mnist_5k()
        return _resize(d.train, args.size), _resize(d.test, args.size), {"name": "mnist_5k"}
    if spec == "synthetic-cxr":
        size = args.size or 64
        train, test = synthetic_cxr(args.n, size=size, seed=args.seed).split(0.2)
        return train, test, {"name": "synthetic_cxr", "n": args.n, "size": size, "seed": args.seed}
    kind, _, path = spec.partition(":")
    if kind == "medmnist" and path:
        train, test = load_medmnist_npz(path, "train"), load_medmnist_npz(path, "test")
        return _resize(train, args.size), _resize(test, args.size), {"name": "medmnist", "path": path}
    if kind == "folder" and path:
        ds = ImageFolderDataset(path, args.labels, size=args.size or 128, seed=args.seed)
        split = ds.to_split(progress=not args.quiet)
        perm = torch.randperm(len(split), generator=torch.Generator().manual_seed(args.seed))
        n_test = max(1, len(split) // 10)
        te, tr = perm[:n_test], perm[n_test:]
        # The names of the alphabetical class indices travel with every model trained on them.
        info = {"name": "folder", "path": path, "labels": str(args.labels) if args.labels else None,
                "class_names": split.class_names}
        return ImageSplit(split.images[tr], split.labels[tr]), ImageSplit(split.images[te], split.labels[te]), info
    raise ValueError(f"--data must be mnist, synthetic-cxr, medmnist:PATH or folder:DIR, got {spec!r}")


def _optional_classifier(path: Path | None, out: Path) -> SmallCNN | None:
    path = path or out / "classifier.safetensors"
    return load_classifier(path) if path.is_file() else None


# -- run ----------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.recipe]()
    cfg.seed = args.seed
    apply_overrides(cfg, args.overrides)
    if args.minutes is not None:
        cfg.minutes = args.minutes
    _check_counts(cfg)
    train, test, info = load_data(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    kw = {"out_dir": out, "resume": args.resume, "progress": not args.quiet, "device": args.device, "data": info}
    reference = _optional_classifier(args.reference, out)
    x, xt = train.images, test.images
    labels_test = None
    if args.recipe == "autoencoder":
        model = recipes.train_autoencoder(x, cfg, test=xt, **kw)
    elif args.recipe == "autoencoder_kl":
        model = recipes.train_autoencoder_kl(x, cfg, test=xt, **kw)
    elif args.recipe == "wgan_gp":
        model = recipes.train_wgan_gp(x, cfg, **kw)
    elif args.recipe == "encoder":
        model = recipes.train_encoder(recipes.load_generator(args.generator or out / "generator.safetensors"), x, cfg, **kw)
    elif args.recipe == "classifier":
        model = recipes.train_classifier(x, train.labels, cfg, test=(xt, test.labels), **kw)
        labels_test = test.labels
    elif args.recipe == "head":
        latent_path = args.latent or out / "autoencoder.safetensors"
        lm = LatentModel.load(latent_path)
        if tuple(x.shape[1:]) != lm.image_shape:
            raise ValueError(
                f"{f'--size {args.size}' if args.size else 'the data'} gives images of shape "
                f"{tuple(x.shape[1:])} but the latent model "
                f"{latent_path} accepts {lm.image_shape} (C, H, W); pass --size {lm.image_shape[-1]}"
            )
        target = "targets" if args.task == "regression" and hasattr(train, "targets") else "labels"
        y, labels_test = getattr(train, target), getattr(test, target)
        model = recipes.train_head(lm, x, y, args.kind, args.task, cfg, test=(xt, labels_test), **kw)
    else:
        model, reference = _conditional(args, cfg, train, test, kw)
        xt = recipes.binary_subset(xt, test.labels, *_classes(args))[0]
    report = recipes.quality_report(model, xt, out, reference_classifier=reference, labels_test=labels_test,
                                    name=args.recipe, seed=args.seed)
    print(json.dumps({"out": str(out), "stopped": report["stopped"], "steps": report["steps"],
                      "metrics": report["metrics"]}, indent=2))
    return 0


def _check_counts(cfg: Any) -> None:
    """Counts a run cannot do without, checked before any data is loaded, in `--set` terms."""
    for name in ("epochs", "batch_size"):
        value = getattr(cfg, name, 1)
        if value < 1:
            raise ValueError(f"--set {name}={value}: {name} must be >= 1")


def _classes(args: argparse.Namespace) -> tuple[int, int]:
    default = (4, 9) if args.data == "mnist" else (0, 1)
    return (default[0] if args.negative is None else args.negative,
            default[1] if args.positive is None else args.positive)


def _conditional(args: argparse.Namespace, cfg: Any, train: Any, test: Any, kw: dict[str, Any]) -> tuple[Any, Any]:
    """Train the conditional GAN (and, without --classifier, its binary classifier first)."""
    negative, positive = _classes(args)
    xb, yb = recipes.binary_subset(train.images, train.labels, negative, positive)
    if args.classifier is not None:
        clf = load_classifier(args.classifier)
    else:
        xbt, ybt = recipes.binary_subset(test.images, test.labels, negative, positive)
        clf = recipes.train_classifier(
            xb, yb, recipes.ClassifierConfig(seed=args.seed), test=(xbt, ybt),
            **{**kw, "out_dir": kw["out_dir"] / "binary_classifier"})
    return recipes.train_conditional_gan(xb, yb, clf, cfg, **kw), clf
