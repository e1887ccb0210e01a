"""The Air Inc. simulator: seeded, realistic streams of reference data and business events."""
