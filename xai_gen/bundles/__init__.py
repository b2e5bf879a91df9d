"""Pretrained bundles that install with the package: what they hold, how they are built and loaded.

For MNIST and the synthetic chest X-rays a bundle holds the image classifier, an oracle
classifier (another architecture and seed), the autoencoder latent model with heads on its
latents, the conditional model `G(z1, z2)` with the classifier it was trained against, and
the GVR paper's WGAN-GP + encoder latent model. `xai-gen bundle build` (or `build_bundle`)
trains them; `load_shipped` loads the files shipped in `xai_gen/bundles/data`, refusing one
whose provenance does not match the current recipe config or data signature.
"""

from xai_gen.bundles.build import build_bundle
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
    "PRESETS",
    "SHIPPED_DIR",
    "Component",
    "StaleBundleError",
    "build_bundle",
    "check_provenance",
    "components",
    "data_signature",
    "load_component",
    "load_shipped",
    "read_provenance",
]
