"""The engine's errors: one class per kind of failure, each with the HTTP status that the Docker
Engine API answers for it (the API layer renders ``{"message": str(error)}``).

    EngineError (500)
     +-- InvalidArgument (400)
     +-- NotFound (404)
     +-- Conflict (409)
     +-- NotModified (304)
     +-- NotImplementedYet (501)
"""

from __future__ import annotations


class EngineError(Exception):
    status = 500


class InvalidArgument(EngineError):
    status = 400


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    status = 304


class NotImplementedYet(EngineError):
    """A feature that the engine does not have yet: said plainly, never faked."""

    status = 501
