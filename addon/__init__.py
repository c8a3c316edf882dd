"""The mitmproxy addon (load with mitmdump -s addon/capture.py)."""
