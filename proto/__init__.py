"""Contracts for what crosses process boundaries (DESIGN.md §3): generated from ``*.proto``."""

from temporay.proto import temporay_hosting_pb2 as hosting

__all__ = ["hosting"]
