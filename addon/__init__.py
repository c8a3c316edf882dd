"""A thin script loading the packaged addon (mitmdump -s addon/capture.py)."""
