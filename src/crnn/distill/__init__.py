"""Distillation from a stronger recognizer (training only): ``teacher`` runs it and maps its classes and
frames onto crnn's; ``targets`` stores its frames per data source and hands them to the training set.
See docs/distillation.md."""
