"""Alternative-data computation: satellite imagery, text and web signals turned into numbers."""
