"""Procedural chest-X-ray-like images with a known disease signal (ground truth for explainers).

Each patient is a thorax (bright soft tissue on a dark background) with two dark lung fields,
ribs and a bright heart between and below them, with random anatomy, a global shift of up to
8 px at 128 x 128 (as the GVR paper's augmentation, scaled with `size`) and noise. Disease
follows the two signs of heart failure the GVR paper names (Sec. 4): an enlarged heart and
lung opacities. Every patient is also rendered healthy (same anatomy, same noise), so the
true difference map and its support are known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

# Background level of the image (outside the body), in [-1, 1].
_BACKGROUND = -0.9
# Opacity patches per patient, and the heart's growth at full cardiac severity.
_PATCHES = 4
_HEART_GROWTH = 0.5
# Peak brightening of an opacity patch at full opacity severity.
_OPACITY = 0.6
# Width of the soft edge of every shape, in pixels (compact: exactly 0/1 outside it).
_EDGE_PX = 1.5
# Smallest disease change kept (1/25 of the pixel noise): smaller ones are rounding or
# invisible, and are set to the healthy value so that masks mark only real signal.
_VISIBLE = 1e-3
# Patients rendered per batch (bounds memory at large n and size).
_CHUNK = 256


@dataclass
class SyntheticCXR:
    """Synthetic chest X-rays, their healthy counterparts and the disease ground truth.

    Attributes:
        images: `(N, 1, S, S)` float32 in [-1, 1], the patients as they are.
        healthy: `(N, 1, S, S)` float32, the same patients (anatomy, noise) without disease.
        masks: `(N, 1, S, S)` bool, exactly the pixels where `images != healthy`: where the
            disease brightens the image by at least 1e-3 (the enlarged heart's rim over lung
            and tissue, the opacities in the lungs). Empty for patients with no disease.
        targets: `(N,)` float32 in [0, 1], rising with heart size and lung opacity (the role
            of the GVR paper's log(BNP)/10).
        labels: `(N,)` int64, `targets > cutoff`.
        cutoff: the threshold of `labels`.
        severity: `(N, 2)` float32 in [0, 1], columns (heart enlargement, lung opacity);
            `targets = 0.15 + 0.7 * severity.mean(1)`.
        class_names: what the labels 0 and 1 mean.
        ground_truth_class: the class whose evidence `masks`, `difference` and `healthy` mark
            (1, diseased): they describe the disease of every patient, mild below the cutoff.
    """

    class_names: ClassVar[tuple[str, str]] = ("healthy", "diseased")
    ground_truth_class: ClassVar[int] = 1

    images: Tensor
    healthy: Tensor
    masks: Tensor
    targets: Tensor
    labels: Tensor
    cutoff: float
    severity: Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def difference(self) -> Tensor:
        """The true difference map `images - healthy`, `(N, 1, S, S)`, nonzero on `masks`."""
        return self.images - self.healthy

    def _subset(self, index: slice) -> SyntheticCXR:
        values = {
            f.name: getattr(self, f.name)[index] if f.name != "cutoff" else self.cutoff
            for f in fields(self)
        }
        return SyntheticCXR(**values)

    def split(self, test_fraction: float = 0.2) -> tuple[SyntheticCXR, SyntheticCXR]:
        """Fixed split: the first `1 - test_fraction` patients train, the rest test.

        The patients are drawn independently, so a contiguous split is a random one.

        Args:
            test_fraction: share of patients in the test part, in (0, 1).

        Returns:
            `(train, test)`.

        Example:
            >>> train, test = synthetic_cxr(10, size=32).split(0.2)
            >>> len(train), len(test)
            (8, 2)
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        n_test = round(len(self) * test_fraction)
        if not 0 < n_test < len(self):
            raise ValueError(
                f"test_fraction={test_fraction} of {len(self)} patients leaves a part empty"
            )
        cut = len(self) - n_test
        return self._subset(slice(0, cut)), self._subset(slice(cut, None))


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def _sample_patients(n: int, gen: torch.Generator) -> dict[str, Tensor]:
    """Anatomy and disease parameters, each `(n,)` (patches `(n, _PATCHES)`), in image units.

    Coordinates are normalised to [-1, 1] across the image, y pointing down, so the same
    seed gives the same patients (up to noise) at every size.
    """
    shift = 8.0 / 128 * 2.0  # 8 px at 128 x 128 (4 px at 64), in normalised units
    p: dict[str, Tensor] = {}
    p["dx"], p["dy"] = _uniform(n, -shift, shift, gen), _uniform(n, -shift, shift, gen)
    p["thorax_a"], p["thorax_b"] = _uniform(n, 0.68, 0.84, gen), _uniform(n, 0.74, 0.88, gen)
    p["tissue"] = _uniform(n, 0.1, 0.3, gen)
    p["lung_x"] = p["thorax_a"] * _uniform(n, 0.42, 0.5, gen)
    p["lung_y"] = _uniform(n, -0.12, -0.04, gen)
    p["lung_a"] = p["thorax_a"] * _uniform(n, 0.33, 0.38, gen)
    p["lung_b"] = p["thorax_b"] * _uniform(n, 0.66, 0.76, gen)
    p["lung_depth"] = _uniform(n, 0.75, 0.95, gen)
    p["heart_x"] = p["thorax_a"] * _uniform(n, 0.06, 0.14, gen)  # patient's left = image right
    p["heart_y"] = p["lung_y"] + p["lung_b"] * _uniform(n, 0.4, 0.5, gen)
    p["heart_a"] = p["thorax_a"] * _uniform(n, 0.265, 0.285, gen)  # heart / thorax width ~0.28
    p["heart_b"] = p["heart_a"] * _uniform(n, 0.75, 0.9, gen)
    p["heart_level"] = p["tissue"] + _uniform(n, 0.25, 0.4, gen)
    p["rib_amp"], p["rib_freq"] = _uniform(n, 0.04, 0.08, gen), _uniform(n, 4.5, 6.0, gen)
    p["rib_phase"] = _uniform(n, 0.0, 2 * math.pi, gen)
    # Disease: an overall score, U-shaped (few borderline patients: the map u -> sin^2(pi u / 2),
    # applied twice to a uniform u, leaves 8 % within 0.1 of 0.5) and symmetric about 0.5
    # (balanced labels at the default cutoff), shared between heart and lungs in a random
    # proportion that keeps their mean equal to it.
    score = torch.rand(n, generator=gen)
    for _ in range(2):
        score = torch.sin(math.pi / 2 * score) ** 2
    spread = torch.minimum(torch.minimum(score, 1 - score), torch.full_like(score, 0.3))
    share = spread * _uniform(n, -1.0, 1.0, gen)
    p["heart_sev"], p["opacity_sev"] = (score + share).clamp(0, 1), (score - share).clamp(0, 1)
    # Opacity patches: which lung, where in it (in lung half-axes), radius, relative strength.
    k = (n, _PATCHES)
    p["patch_side"] = torch.randint(0, 2, k, generator=gen).float() * 2 - 1
    p["patch_u"] = -0.6 + 1.2 * torch.rand(k, generator=gen)
    p["patch_v"] = -0.6 + 1.2 * torch.rand(k, generator=gen)
    p["patch_r"] = 0.45 + 0.35 * torch.rand(k, generator=gen)
    p["patch_w"] = 0.85 + 0.15 * torch.rand(k, generator=gen)
    return p


def _soft_ellipse(
    x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, a: Tensor, b: Tensor, edge: float
) -> Tensor:
    """Filled ellipse `(n, S, S)` in [0, 1] with a smoothstep rim `edge` wide (exact 0/1 off it).

    `x, y`: `(1, S, S)` grid; `cx, cy, a, b`: `(n,)` centre and half-axes.
    """
    cx, cy, a, b = (t[:, None, None] for t in (cx, cy, a, b))
    rho = torch.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
    # (1 - rho) * min(a, b) approximates the signed distance to the rim.
    t = (0.5 + (1 - rho) * torch.minimum(a, b) / edge).clamp(0.0, 1.0)
    return t * t * (3 - 2 * t)


def _opacity(x: Tensor, y: Tensor, p: dict[str, Tensor]) -> Tensor:
    """Sum of compact bumps `(1 - d^2 / r^2)_+^2` inside the lungs, `(n, S, S)`, at most 1."""
    lung_x, lung_a = p["lung_x"][:, None], p["lung_a"][:, None]
    cx = p["dx"][:, None] + p["patch_side"] * lung_x + p["patch_u"] * lung_a
    cy = p["dy"][:, None] + p["lung_y"][:, None] + p["patch_v"] * p["lung_b"][:, None]
    r = p["patch_r"] * lung_a
    d2 = (x[:, None] - cx[..., None, None]) ** 2 + (y[:, None] - cy[..., None, None]) ** 2
    bumps = (1 - d2 / (r**2)[..., None, None]).clamp(min=0.0) ** 2
    return (bumps * p["patch_w"][..., None, None]).sum(1).clamp(max=1.0)


def _render(
    p: dict[str, Tensor], x: Tensor, y: Tensor, noise: Tensor, edge: float
) -> tuple[Tensor, Tensor]:
    """One chunk of patients as `(diseased, healthy)`, each `(n, S, S)`; `noise: (n, S, S)`.

    Both share every term but the disease's, so they differ only where the disease shows.
    """
    dx, dy = p["dx"], p["dy"]
    col = lambda name: p[name][:, None, None]  # noqa: E731  (n,) -> (n, 1, 1)
    thorax = _soft_ellipse(x, y, dx, dy, p["thorax_a"], p["thorax_b"], edge)
    left, right = (
        _soft_ellipse(
            x, y, dx + side * p["lung_x"], dy + p["lung_y"], p["lung_a"], p["lung_b"], edge
        )
        for side in (-1.0, 1.0)
    )
    lungs = thorax * torch.maximum(left, right)
    # Ribs: arcs across the thorax, visible as faint bright bands.
    ribs = col("rib_amp") * torch.sin(
        math.pi * col("rib_freq") * (y - col("dy") + 0.3 * (x - col("dx")) ** 2) + col("rib_phase")
    )
    body = _BACKGROUND + thorax * (col("tissue") - _BACKGROUND + ribs) - lungs * col("lung_depth")
    # Opacities brighten the lungs; the term is exactly 0 outside the bumps and the lungs.
    opaque = body + _OPACITY * col("opacity_sev") * lungs * _opacity(x, y, p)
    out = []
    for image, growth in ((opaque, 1 + _HEART_GROWTH * p["heart_sev"]), (body, 1.0)):
        a, b = p["heart_a"] * growth, p["heart_b"] * growth
        heart = _soft_ellipse(x, y, dx + p["heart_x"], dy + p["heart_y"], a, b, edge)
        # The heart lies in front of the lungs: where it is opaque, nothing behind shows.
        image = image * (1 - heart) + col("heart_level") * heart
        out.append((image + noise).clamp(-1.0, 1.0))
    return out[0], out[1]


def synthetic_cxr(
    n: int, size: int = 64, seed: int = 0, cutoff: float = 0.5, progress: bool | None = None
) -> SyntheticCXR:
    """Generate `n` synthetic chest X-rays with known disease ground truth.

    Disease (heart enlargement up to +50 % and brighter opacity patches in the lungs) has a
    random severity per patient; the continuous target `0.15 + 0.7 * mean severity` in
    [0.15, 0.85] rises with both, like the GVR paper's log(BNP)/10, and the label is
    `target > cutoff`. Severities are U-shaped around 0.5, so labels are roughly balanced
    at the default cutoff and few patients are borderline. Everything is drawn from one
    generator seeded with `seed`: the same arguments give identical tensors.

    Args:
        n: number of patients.
        size: side S of the square images (>= 16); anatomy scales with it.
        seed: random seed.
        cutoff: threshold on `targets` for `labels`, in [0, 1].
        progress: tqdm bar over batches; None shows it only for large requests.

    Returns:
        `SyntheticCXR` with images, healthy renderings `(n, 1, S, S)` float32 in [-1, 1],
        masks `(n, 1, S, S)` bool, targets `(n,)` float32, labels `(n,)` int64 and
        severity `(n, 2)`.

    Example:
        >>> d = synthetic_cxr(8, size=32, seed=0)
        >>> d.images.shape, d.masks.dtype, bool(((d.difference != 0) == d.masks).all())
        (torch.Size([8, 1, 32, 32]), torch.bool, True)
        >>> bool(torch.equal(d.labels, (d.targets > 0.5).long()))
        True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"cutoff must be in [0, 1], got {cutoff}")
    gen = torch.Generator().manual_seed(seed)
    params = _sample_patients(n, gen)
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) * 2 / size - 1
    y, x = axis[None, :, None], axis[None, None, :]
    edge = _EDGE_PX * 2 / size
    images, healthy = [], []
    starts = range(0, n, _CHUNK)
    show = n * size * size > 2**24 if progress is None else progress
    for start in tqdm(starts, desc="synthetic_cxr", disable=not show):
        p = {k: v[start : start + _CHUNK] for k, v in params.items()}
        m = len(p["dx"])
        # Noise shared by both renderings: smooth low-frequency texture plus pixel noise.
        coarse = torch.randn(m, 1, 6, 6, generator=gen) * 0.04
        texture = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
        noise = texture[:, 0] + 0.025 * torch.randn(m, size, size, generator=gen)
        diseased, normal = _render(p, x, y, noise, edge)
        images.append(torch.where((diseased - normal).abs() < _VISIBLE, normal, diseased))
        healthy.append(normal)
    img, hea = torch.cat(images)[:, None], torch.cat(healthy)[:, None]
    severity = torch.stack([params["heart_sev"], params["opacity_sev"]], dim=1)
    targets = 0.15 + 0.7 * severity.mean(1)
    return SyntheticCXR(
        images=img,
        healthy=hea,
        masks=img != hea,
        targets=targets,
        labels=(targets > cutoff).long(),
        cutoff=float(cutoff),
        severity=severity,
    )
