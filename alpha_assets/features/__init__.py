"""Features: temporal price features, forward-return labels (and, later, alternative-data joins)."""
