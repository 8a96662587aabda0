"""Vendor file parsing and validation: every file is checked, and a bad one raises VendorFileError naming it."""
