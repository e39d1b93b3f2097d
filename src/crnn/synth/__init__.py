"""Offline MJSynth-style synthetic word-image generator (``crnn synth``)."""
