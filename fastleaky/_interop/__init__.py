"""Adapters for non-NumPy array kinds; see ``fastleaky.interop``."""
