"""lmforge: the whole life of a language model — tokenize, embed, transformer, pre-train, fine-tune,
evaluate, use — as readable, fast PyTorch software.

The library is the components (one module per idea of the course); the `lmforge` command only parses
arguments and calls functions in `lmforge.recipes`.
"""

__version__ = "0.1.0"

from lmforge.errors import LmforgeError

__all__ = ["LmforgeError", "__version__"]
