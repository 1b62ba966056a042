"""Small real worker programs for testing and benchmarking the scheduler (not mocks: they run)."""
