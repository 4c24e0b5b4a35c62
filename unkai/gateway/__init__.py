"""One ASGI app on one port: routing, auth and unkai's own endpoints."""

from unkai.gateway.app import Gateway

__all__ = ["Gateway"]
