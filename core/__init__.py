"""dermq's base layer: settings, typed contracts and file helpers that every layer (api, workers,
training, pipeline, the command line) may import; it imports none of them."""

__version__ = "0.1.0"
