"""Dead letters: records that could not be processed, kept with the reason, never dropped."""
