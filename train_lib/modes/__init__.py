"""The other modes: bench, convert, predict, inspect and summary, with what they use."""
