"""invlab: self-supervised representation learning where invariance is explicit."""

__version__ = "0.1.0"
