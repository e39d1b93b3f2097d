"""Weight converters from other frameworks (PaddleOCR) into crnn checkpoints; numpy-only readers."""
