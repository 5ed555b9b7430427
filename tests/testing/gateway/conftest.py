"""Fixtures of the gateway's own tests (those shared with the broker's are in
tests/testing/conftest.py)."""

from tests.testing.gateway.data_clients import ibapi_data_client

__all__ = ["ibapi_data_client"]
