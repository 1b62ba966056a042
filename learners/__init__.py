"""Learning side of rill: stream-x algorithms, the replay cache, the wire protocol.

Imports only ``policies``, ``hal.errors`` and ``hal.config`` of rill's packages (docs/design.md, "Rooms").
"""
