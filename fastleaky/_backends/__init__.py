"""Backend implementations (private); see ``fastleaky.registry`` for the protocol.

Named with an underscore so it never shadows the public ``fastleaky.backends()``.
"""
