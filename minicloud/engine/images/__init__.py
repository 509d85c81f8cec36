"""Images: references, the image store, pull from registries, import/load/save."""
