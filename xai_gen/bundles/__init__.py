"""Bundles: every model of a data set, pretrained (shipped with the package) or trained on demand.

For MNIST and the synthetic chest X-rays a bundle holds the image classifier, an oracle
classifier (another architecture and seed), the autoencoder latent model with heads on its
latents, the conditional model `G(z1, z2)` with the classifier it was trained against, and
the GVR paper's WGAN-GP + encoder latent model. `mnist_bundle()` / `synthetic_cxr_bundle()`
(or `load_bundle`) give them as one `Bundle`, from the files shipped in `xai_gen/bundles/data`
by default, or trained with the same recipes into a cache with `preset="fast"` / `"full"`.
`xai-gen bundle build` (or `build_bundle`) rebuilds the files; `load_shipped` loads them,
refusing one whose provenance does not match the current recipe config or data signature.
"""

from xai_gen.bundles.build import build_bundle
from xai_gen.bundles.bundle import PARTS, Bundle, load_bundle, mnist_bundle, synthetic_cxr_bundle
from xai_gen.bundles.shipped import (
    SHIPPED_DIR,
    StaleBundleError,
    check_provenance,
    load_component,
    load_shipped,
    read_provenance,
)
from xai_gen.bundles.spec import DATASETS, PRESETS, Component, components, data_signature

__all__ = [
    "DATASETS",
    "PARTS",
    "PRESETS",
    "SHIPPED_DIR",
    "Bundle",
    "Component",
    "StaleBundleError",
    "build_bundle",
    "check_provenance",
    "components",
    "data_signature",
    "load_bundle",
    "load_component",
    "load_shipped",
    "mnist_bundle",
    "read_provenance",
    "synthetic_cxr_bundle",
]
