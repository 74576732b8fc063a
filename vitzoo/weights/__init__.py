"""Checkpoints: the resolver of names, the Hub, file formats, config files, and loading into a model."""
