"""Training, evaluation and the other modes of main.py."""
