"""Base images built offline from Debian's packages and pushed into minicloud's registry.

    recipes.py     Recipe (what an image is made of and how it runs), RECIPES, register()
    library.py     the built-in recipes: busybox, debian, python, nginx, postgres, mariadb
    rootfs.py      root filesystems by mmdebstrap
    layers.py      deterministic, whiteout-free layer tarballs and their digests
    builder.py     recipes -> cached layers (bases first, at most two builds at once)
    oci.py         image config and manifest documents
    push.py        push to an OCI registry, only what is missing
    bootstrap.py   bootstrap() / ensure_images(): build what is missing, push what is missing
"""

from minicloud.images.bootstrap import Outcome, bootstrap, default_names, ensure_images
from minicloud.images.cache import default_cache_dir
from minicloud.images.recipes import RECIPES, File, ImageConfig, Recipe, RecipeError, register

__all__ = ["RECIPES", "File", "ImageConfig", "Outcome", "Recipe", "RecipeError", "bootstrap", "default_cache_dir",
           "default_names", "ensure_images", "register"]
