"""The network: its config, its modules and the table of architectures; no weights, no files."""
