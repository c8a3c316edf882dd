"""Benchmarks of the recorder (through real mitmdump) and the analyzer: ``python -m bench``."""
