"""Published tables: run their rows, report them against the papers."""
