"""tap-fullstory: a Singer tap for FullStory Data Export bundles."""

__version__ = "0.1.0"
