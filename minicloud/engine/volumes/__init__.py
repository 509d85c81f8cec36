"""Volumes: named and anonymous volumes of the local driver, and how containers mount them."""
