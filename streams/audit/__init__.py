"""The append-only, hash-chained audit trail (``audit.communications.v1``)."""
