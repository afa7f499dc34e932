"""ccpulse: real-time contact-center metrics from channel events on Kafka."""

__version__ = "0.1.0"
