"""One thin command-line module per MLproject entry point."""
