"""One module per ``crnn`` verb: ``add_arguments(parser)`` and ``run(args) -> exit code``.

These modules import only argparse-level code at the top, so ``crnn --help`` and the torch-free
ONNX install stay fast; ``run`` checks what a user can get wrong before it imports torch or loads a
model, then hands over to the module that does the work (``crnn.train``, ``crnn.evaluate``, ...).
"""
