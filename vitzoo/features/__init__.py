"""Images in, features out: transforms, inputs, the batch loop, extraction and the embed job with its outputs."""
