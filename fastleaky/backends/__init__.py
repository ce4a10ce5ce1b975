"""Backend implementations; see ``fastleaky.registry`` for the protocol."""
