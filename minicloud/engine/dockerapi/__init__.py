"""The Docker Engine API (1.24..1.50) on the engine, served on a unix socket."""
