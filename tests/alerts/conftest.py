"""Alerts tests share the root fixtures (loopback push services, delivery worker)."""
