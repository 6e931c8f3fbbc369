"""Planning-action detection: SQL detectors over `steps` joined to `episodes`."""
