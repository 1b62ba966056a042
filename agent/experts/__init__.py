"""Scripted experts: policies that solve a simulated task from what the simulator knows (block and
target positions), for recording demonstrations and as the success ceiling of benchmarks."""
