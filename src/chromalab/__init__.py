"""chromalab: train, compare and serve automatic image colorization models.

Nothing heavy is imported here, so `import chromalab` and the CLI's `--help` stay fast.
"""

__version__ = "0.1.0"
