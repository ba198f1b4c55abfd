"""The sandbox: a FullStory-compatible legacy Data Export server on loopback."""
