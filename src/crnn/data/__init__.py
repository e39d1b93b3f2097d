"""Data: datasets (image + label), transforms (image -> normalised array), batching."""
