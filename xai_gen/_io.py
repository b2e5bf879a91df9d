"""Files on disk: safetensors plus a JSON header, never pickle; one save/load path for every kind.

The header has three parts, kept apart so that no loader has to pick its own keys out of a
user's metadata:

* the file's own facts: `kind` (what it holds, e.g. `"classifier"`), `format` (of this
  header) and `version` (of xai-gen that wrote it);
* `spec`: what rebuilds the object before its tensors are loaded (architecture, shapes);
* `meta`: the user's metadata (recipe, config, data, metrics, history), returned as written.

Modules that are saved declare a `kind`, a `meta` dict, `file_spec()` and a classmethod
`from_file_spec(spec, meta)`, and register with `@file_kind`; `save_module` and
`load_module` then do the rest, and `FILE_KINDS` maps each kind to its class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import safetensors
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from xai_gen._version import __version__

META_KEY = "xai_gen"
#: Version of the header layout. 1: one flat dict (file facts, spec and user metadata mixed).
FORMAT = 2


@dataclass(frozen=True)
class Header:
    """What a file says about itself.

    Attributes:
        kind: what the file holds (a key of `FILE_KINDS`, `"explanation"` or `"checkpoint"`).
        format: header layout the file was written with.
        version: xai-gen version that wrote it (None if unknown).
        spec: what rebuilds the object (architecture, shapes), per kind.
        meta: the user's metadata, as given to `save_tensors`.
    """

    kind: str
    format: int = FORMAT
    version: str | None = __version__
    spec: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_tensors(
    path: str | Path,
    tensors: dict[str, Tensor],
    kind: str,
    spec: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write `tensors` and a JSON header to a `.safetensors` file.

    Args:
        path: destination file; parent folders are created.
        tensors: name -> tensor; stored contiguous on the CPU.
        kind: what the file holds, checked on load.
        spec: JSON-serialisable description that rebuilds the object.
        meta: JSON-serialisable user metadata (recipe, config, data, metrics, ...).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.safetensors"
        >>> _ = save_tensors(path, {"w": torch.ones(2)}, "demo", {"size": 2}, {"note": "hi"})
        >>> tensors, header = load_tensors(path, "demo")
        >>> header.spec, header.meta, header.format
        ({'size': 2}, {'note': 'hi'}, 2)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"kind": kind, "format": FORMAT, "version": __version__, "spec": spec or {}, "meta": meta or {}}
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(cpu, str(path), metadata={META_KEY: json.dumps(header)})
    return path


#: Format 1 kept everything in one flat dict; per kind, these keys described the object.
_FORMAT_1_SPEC_KEYS = {
    "classifier": ("architecture",),
    "generator": ("architecture",),
    "latent_model": ("architecture", "latent_dim", "image_shape", "value_range"),
    "conditional_latent_model": ("architecture", "latent_dim", "image_shape", "value_range", "structural_dim"),
    "latent_classifier": ("head_kind", "out_dim", "hidden", "latent_kind", "latent_header"),
    "explanation": ("method", "params", "seconds"),
    "checkpoint": ("optimizers",),
}


def _from_format_1(raw: dict[str, Any]) -> Header:
    """The header of a file written before file facts, spec and user metadata were kept apart."""
    kind = raw.get("kind")
    rest = {k: v for k, v in raw.items() if k not in ("kind", "version")}
    spec = {k: rest.pop(k) for k in _FORMAT_1_SPEC_KEYS.get(kind, ()) if k in rest}
    if "latent_header" in spec:  # a latent classifier held its latent model's flat header
        inner = _from_format_1({"kind": spec.pop("latent_kind", None), **spec.pop("latent_header")})
        spec["latent"] = {"kind": inner.kind, "spec": inner.spec, "meta": inner.meta}
    return Header(kind, 1, raw.get("version"), spec, rest)


def load_tensors(path: str | Path, kind: str | None = None) -> tuple[dict[str, Tensor], Header]:
    """Read a file written by `save_tensors` (or by xai-gen before format 2).

    Args:
        path: a `.safetensors` file.
        kind: if given, the file's `kind` must match.

    Returns:
        `(tensors, header)`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, not safetensors, not written by xai-gen, has
            metadata that is not a JSON object, is of a newer header format, or of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
        tensors = load_file(str(path))
    except (safetensors.SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path} is not a readable safetensors file (truncated or foreign?): {err}") from err
    if raw is None:
        raise ValueError(f"{path} is a safetensors file but was not written by xai-gen (no metadata)")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: its xai-gen metadata ('{META_KEY}') is not valid JSON ({err}); the file was edited or damaged") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: its xai-gen metadata ('{META_KEY}') is not a JSON object but {type(data).__name__}")
    fmt = data.get("format", 1)
    if fmt > FORMAT:
        raise ValueError(
            f"{path} has header format {fmt} (written by xai-gen {data.get('version')}); this xai-gen "
            f"{__version__} reads formats up to {FORMAT}: upgrade xai-gen"
        )
    header = _from_format_1(data) if fmt == 1 else Header(data["kind"], fmt, data.get("version"), data["spec"], data["meta"])
    if kind is not None and header.kind != kind:
        raise ValueError(f"{path} holds a {header.kind!r}, expected a {kind!r}")
    return tensors, header


def load_state(module: torch.nn.Module, tensors: dict[str, Tensor], path: str | Path) -> None:
    """Load a state dict strictly, turning key mismatches into a clear ValueError."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match the architecture in its metadata: {err}") from err


class SavedModule(Protocol):
    """What a module declares to be saved and loaded by `save_module` / `load_module`."""

    kind: ClassVar[str]
    meta: dict[str, Any]

    def file_spec(self) -> dict[str, Any]: ...

    @classmethod
    def from_file_spec(cls, spec: dict[str, Any], meta: dict[str, Any]) -> Any: ...

    def state_dict(self) -> dict[str, Tensor]: ...


M = TypeVar("M", bound=type)

#: kind -> the module class that files of that kind hold.
FILE_KINDS: dict[str, type] = {}


def file_kind(cls: M) -> M:
    """Class decorator: files of `cls.kind` hold a `cls` (see `SavedModule`)."""
    FILE_KINDS[cls.kind] = cls
    return cls


def save_module(module: SavedModule, path: str | Path) -> Path:
    """Write a registered module's weights, `file_spec()` and `meta` to `path`."""
    return save_tensors(path, module.state_dict(), module.kind, module.file_spec(), module.meta)


def load_module(path: str | Path, kind: str, map_location: str | torch.device = "cpu") -> Any:
    """Rebuild the module a file of `kind` (or of a subclass's kind) holds, load its weights
    strictly; eval mode, on `map_location`."""
    tensors, header = load_tensors(path)
    cls = FILE_KINDS.get(header.kind)
    if not (isinstance(cls, type) and issubclass(cls, FILE_KINDS[kind])):
        raise ValueError(f"{path} holds a {header.kind!r}, expected a {kind!r}")
    module = cls.from_file_spec(header.spec, header.meta)
    load_state(module, tensors, path)
    return module.to(map_location).eval()
