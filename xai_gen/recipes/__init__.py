"""Training recipes: each a function with a config dataclass, a seed, progress and a loss history."""

from xai_gen.recipes.classifier import ClassifierConfig, accuracy, train_classifier

__all__ = ["ClassifierConfig", "accuracy", "train_classifier"]
