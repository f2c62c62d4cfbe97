"""Small helpers every layer shares: progress bars, hashing, array maths, sequences, optional imports."""
