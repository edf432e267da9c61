"""dermq: dermatology image analysis as an asynchronous job-queue inference service."""

__version__ = "0.1.0"
