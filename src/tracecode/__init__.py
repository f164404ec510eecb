"""tracecode: screen drug traceability-code uploads for suspicious leads (疑点线索)."""

__version__ = "0.1.0"
