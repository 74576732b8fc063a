"""What features are worth (k-NN, linear and few-shot probes) and where a model looks (the paper's analyses)."""
