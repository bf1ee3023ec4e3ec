"""Benchmarks: speed of the SRM and generator, and (later) the 3E evaluation."""
