"""The workflow layer: configuration, logging and one steps module per rule file."""
