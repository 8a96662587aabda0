"""Ingestion: vendor files in landing/ become raw.* Delta tables; bad files go to quarantine/."""
