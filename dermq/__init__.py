"""dermq: dermatology image analysis as an asynchronous job-queue inference service.

This package is the top floor: the command line (`dermq.cli`), the embedded single-machine stack
and the HTTP client. The service's parts live beside it (core, pipeline, workers, training, api).
"""

from core import __version__

__all__ = ["__version__"]
