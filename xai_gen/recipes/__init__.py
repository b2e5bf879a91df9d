"""Training recipes: each a function with a config dataclass, a seed, progress and a loss history.

Every recipe runs on the shared `TrainingLoop`: wall-clock budget (`config.minutes`),
tqdm progress, a history row per epoch / logging window, and resumable safetensors
checkpoints in `out_dir` (`resume=True` continues a killed run). The pretrained bundles
built with these recipes are in `xai_gen.bundles`; this package imports nothing above it.
"""

from xai_gen.recipes._loop import TrainConfig
from xai_gen.recipes.autoencoder import AutoencoderConfig, train_autoencoder
from xai_gen.recipes.autoencoder_kl import AutoencoderKLConfig, train_autoencoder_kl
from xai_gen.recipes.classifier import ClassifierConfig, accuracy, train_classifier
from xai_gen.recipes.conditional_autoencoder import (
    ConditionalAutoencoderConfig,
    mmd_to_normal,
    train_conditional_autoencoder,
)
from xai_gen.recipes.conditional_gan import (
    ConditionalGANConfig,
    binary_subset,
    class_consistency,
    train_conditional_gan,
)
from xai_gen.recipes.encoder import EncoderConfig, train_encoder
from xai_gen.recipes.heads import HeadConfig, train_head
from xai_gen.recipes.losses import gradient_penalty, laplacian_loss, laplacian_pyramid
from xai_gen.recipes.report import quality_report
from xai_gen.recipes.wgan_gp import WGANGPConfig, load_generator, save_generator, train_wgan_gp

__all__ = [
    "AutoencoderConfig",
    "AutoencoderKLConfig",
    "ClassifierConfig",
    "ConditionalAutoencoderConfig",
    "ConditionalGANConfig",
    "EncoderConfig",
    "HeadConfig",
    "TrainConfig",
    "WGANGPConfig",
    "accuracy",
    "binary_subset",
    "class_consistency",
    "gradient_penalty",
    "laplacian_loss",
    "laplacian_pyramid",
    "load_generator",
    "mmd_to_normal",
    "quality_report",
    "save_generator",
    "train_autoencoder",
    "train_autoencoder_kl",
    "train_classifier",
    "train_conditional_autoencoder",
    "train_conditional_gan",
    "train_encoder",
    "train_head",
    "train_wgan_gp",
]
