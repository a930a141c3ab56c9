"""mindediting: a MindSpore model zoo for video restoration and computational imaging."""

__version__ = "0.1.0"
