"""The application layer between the CLI and the code location: what a user command does, without its parsing."""
