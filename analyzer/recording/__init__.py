"""Recording: turning WebSocket frames into capture files (used by the addon and by convert)."""
