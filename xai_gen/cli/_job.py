"""What `explain` and `compare` share to run a data-set job: its options and how it is built.

`--data` names the images (`mnist`, `synthetic-cxr`, `medmnist:PATH`, `folder:DIR`), `--model`
the classifier (a `save_classifier` file or `module:callable`; the bundled classifier when
omitted for bundled data), `--latent-model` the latent model of the generative methods (the
bundle's when omitted for bundled data). The job itself is `xai_gen.jobs.run_job`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from xai_gen._core.devices import resolve_device
from xai_gen.bundles.spec import load_data
from xai_gen.cli._setup import DATASETS, BundleLoader, bundle_parts, method_params, open_bundle
from xai_gen.evaluation.plan import BATCH_SIZE, EXPENSIVE_N, SHARD_SIZE, sample_index
from xai_gen.jobs import FolderSource, JobSummary, RayOptions, TensorSource, Work, run_job
from xai_gen.jobs.job import ENGINES
from xai_gen.jobs.models import load_model
from xai_gen.jobs.sources import Source, data_source, medmnist_source
from xai_gen.jobs.work import TARGETS
from xai_gen.latent import LatentModel

#: `--data` forms besides the bundled data sets, as `kind:argument`.
DATA_KINDS = ("medmnist", "folder")
#: Method settings for data without a bundle: MNIST's (the traversal walks GVR's path, as
#: there is no conditional model).
OTHER_DATA = "mnist"


def add_job_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a data-set job: data, models, batch size, then `add_engine_arguments`."""
    p.add_argument(
        "--data",
        default="mnist",
        type=data_argument,
        help="mnist, synthetic-cxr (bundled test splits), medmnist:FILE.npz[:split] "
        "(default split test) or folder:DIR (PNG/JPEG files, or grey DICOM .dcm with the [dicom] "
        "extra); default mnist",
    )
    p.add_argument("--labels", type=Path, help="labels CSV of folder: data (image, label columns)")
    p.add_argument(
        "--model",
        help="classifier: a file written by save_classifier, or module:callable returning an "
        "nn.Module (default: the bundled classifier, bundled data only)",
    )
    p.add_argument(
        "--latent-model",
        type=Path,
        help="LatentModel file for gvr/latent_traversal (default: the bundle's, bundled data only)",
    )
    p.add_argument(
        "--image-size", type=int, help="folder: data: side of the square images (default: the model's)"
    )
    p.add_argument(
        "--channels", type=int, choices=(1, 3), help="folder: data: 1 grey or 3 RGB (default: the model's)"
    )
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="predicted",
        help="explain the model's predicted class (default) or the data's label",
    )
    p.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help=f"images per attribute call (default {BATCH_SIZE})"
    )
    add_engine_arguments(p)


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """The options of how a job runs: shards, resume, the local or the Ray engine."""
    p.add_argument("--resume", action="store_true", help="continue the job already in --out")
    p.add_argument(
        "--shard-size", type=int, default=SHARD_SIZE, help=f"images per shard file (default {SHARD_SIZE})"
    )
    p.add_argument("--engine", choices=ENGINES, default="local", help="local (one process) or ray")
    p.add_argument("--threads", type=int, help="torch threads of the local engine (default: torch's)")
    p.add_argument(
        "--ray-address", help="address of a running Ray cluster (default: start a local Ray)"
    )
    p.add_argument("--workers", type=int, help="Ray actors (default: cluster CPUs / --cpus-per-worker)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per Ray actor (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (default 0)")


def check_job_arguments(args: argparse.Namespace) -> None:
    """Validate the job's options (those `args` has) before anything is loaded."""
    for flag in ("--batch-size", "--shard-size", "--threads", "--workers", "--image-size"):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise ValueError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    if args.engine != "ray" and (args.ray_address or args.workers):
        raise ValueError("--ray-address and --workers need --engine ray")
    if args.engine == "ray":
        # The Ray actors need the device, not this driver (a head node may have no GPU).
        try:
            torch.device(args.device)
        except RuntimeError as err:
            raise ValueError(f"--device: {err}") from err
    else:
        resolve_device(args.device, "--device")


def parse_data(spec: str) -> tuple[str, str]:
    """`--data` -> `(kind, argument)`.

    Example:
        >>> parse_data("mnist"), parse_data("folder:/data/xrays")
        (('mnist', ''), ('folder', '/data/xrays'))
    """
    if spec in DATASETS:
        return spec, ""
    kind, sep, arg = spec.partition(":")
    if not sep or kind not in DATA_KINDS or not arg:
        raise ValueError(
            f"--data must be one of {list(DATASETS)}, medmnist:FILE.npz or folder:DIR; got {spec!r}"
        )
    return kind, arg


def data_argument(spec: str) -> str:
    """`--data` checked while parsing, so that a malformed value is a usage error."""
    try:
        parse_data(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--data ")) from err
    return spec


def _bundled_source(kind: str, bundle: Any) -> TensorSource:
    """The bundled test split: from the bundle when one is loaded, else drawn directly."""
    if bundle is not None:
        data = bundle.test
    else:
        data = load_data(kind)[1]  # the shipped bundle's test split (`xai_gen.datasets`)
    return data_source(kind, data)


def _folder_source(args: argparse.Namespace, arg: str, model: Any) -> FolderSource:
    config = getattr(model, "config", {}) or {}
    size = args.image_size or config.get("image_size")
    channels = args.channels or config.get("in_channels")
    if size is None or channels is None:
        raise ValueError("folder: data needs --image-size and --channels for this model")
    return FolderSource(Path(arg), size, channels, args.labels)


def build_work(
    args: argparse.Namespace,
    methods: list[str],
    metrics: list[str],
    bundle_loader: BundleLoader | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    expensive_n: int = EXPENSIVE_N,
) -> Work:
    """The `Work` of the job the arguments describe (loads models and lists the data).

    Of a bundle, only the models the methods and metrics need are loaded (`bundle_parts`;
    the job hands no oracle to its metrics), and only when `--model` / `--latent-model` do not
    name them."""
    kind, arg = parse_data(args.data)
    bundled = kind in DATASETS
    settings = kind if bundled else OTHER_DATA
    if getattr(args, "labels", None) is not None and kind != "folder":
        raise ValueError("--labels applies to folder: data only")
    model_spec, latent_file = getattr(args, "model", None), getattr(args, "latent_model", None)
    parts = bundle_parts(settings, methods, metrics) - {"oracle"}
    if latent_file:
        parts.discard("latent_model")
    bundle = None

    def get_bundle(what: str) -> Any:
        nonlocal bundle
        if not bundled:
            raise ValueError(f"{what} is required for {kind}: data (no bundled model)")
        if bundle is None:
            bundle = open_bundle(args, kind, parts, bundle_loader)
        return bundle

    model = load_model(model_spec) if model_spec else get_bundle("--model").classifier
    latent = None
    if latent_file:
        latent = LatentModel.load(latent_file)
    elif "latent_model" in parts:
        latent = get_bundle("--latent-model").latent_model
    if parts - {"classifier", "latent_model"}:
        get_bundle("--latent-model")  # a model the data set's settings name (the conditional model)
    if bundled:
        source: Source = _bundled_source(kind, bundle)
    elif kind == "medmnist":
        path, _, split = arg.partition(":")
        source = medmnist_source(path, split or "test")
    else:
        source = _folder_source(args, arg, model)
    params = method_params(settings, bundle, methods)
    selection = None
    if args.n is not None and args.n < len(source):
        selection = sample_index(len(source), args.n, args.seed)
    return Work(
        source=source,
        model=model,
        methods=methods,
        resources={"latent_model": latent, "progress": False},
        params={k: v for k, v in params.items() if k in methods},
        metrics=metrics,
        metric_options={k: dict(v) for k, v in (metric_options or {}).items() if k in metrics},
        selection=selection,
        seed=args.seed,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        target=getattr(args, "target", "predicted"),
        expensive_n=expensive_n,
        device=job_device(args),
    )


def job_device(args: argparse.Namespace) -> str:
    """The device the job's workers use: `--device` as given for Ray (the actors resolve it,
    a head node may have no GPU), resolved here for the local engine."""
    return str(torch.device(args.device) if args.engine == "ray" else resolve_device(args.device, "--device"))


def run_with(args: argparse.Namespace, work: Work, out: Path, data: str) -> JobSummary:
    """`run_job` with the engine options of the arguments (resume, reuse, engine, threads, Ray)."""
    ray = RayOptions(
        address=args.ray_address,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )
    return run_job(
        work, out, resume=args.resume, reuse=getattr(args, "reuse", False), engine=args.engine,
        threads=args.threads, ray=ray, data=data, progress=not getattr(args, "quiet", False),
    )
