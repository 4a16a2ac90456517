"""Text every machine has: corpora built from the Python installation itself, never downloaded."""
