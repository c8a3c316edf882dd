"""rt-analyze: record and analyze realtime voice-AI traffic."""
