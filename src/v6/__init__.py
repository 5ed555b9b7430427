"""v6: a reliable Interactive Brokers connection layer."""

__version__ = "0.1.0"
