"""Django middleware of litefs_guard. (Placeholder in the read-your-writes
branch: at merge, keep the other middleware file and add the import below.)"""

from .read_your_writes import ReadYourWritesMiddleware

__all__ = ["ReadYourWritesMiddleware"]
