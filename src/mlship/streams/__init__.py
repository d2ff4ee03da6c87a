"""Streams in the domain: windowed features (online and offline) and the landed event history."""
