"""Model weights: the manifest of every model facepipe uses, a verified cache, and fetch.

    path = weights_path("fer-mini-xception")   # or WeightsMissingError naming the fetch command

Only the standard library is imported here, so this is instant.
"""

from facepipe.weights.registry import (
    ModelEntry,
    cache_dir,
    entry,
    fetch,
    is_available,
    list_models,
    location,
    weights_path,
)

__all__ = [
    "ModelEntry",
    "cache_dir",
    "entry",
    "fetch",
    "is_available",
    "list_models",
    "location",
    "weights_path",
]
