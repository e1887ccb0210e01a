"""The end-to-end demo: the whole system on local defaults."""
