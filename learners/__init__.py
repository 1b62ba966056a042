"""Learning side of rill: stream-x algorithms, the replay cache, the wire protocol.

Imports only ``policies`` among rill's packages (see DESIGN.md).
"""
