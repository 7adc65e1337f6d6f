"""Contracts for what crosses process boundaries (docs/architecture.md, "Layers"): generated from
``*.proto`` by ``proto/regenerate.py``."""

from temporay.proto import temporay_hosting_pb2 as hosting

__all__ = ["hosting"]
