"""Docker's classic build: the Dockerfile language, the build context, the layer cache, the executor."""
