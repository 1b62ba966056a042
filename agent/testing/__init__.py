"""Reference policies for tests and benchmarks of the control loop (real timing, real chunks)."""
