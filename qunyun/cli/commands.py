"""CLI command modules; importing this package registers every command."""
