"""rill's own gymnasium tasks, registered under the ``rill/`` namespace on import."""
