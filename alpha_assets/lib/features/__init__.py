"""Feature engineering: temporal price features, labels, point-in-time alternative-data joins."""
