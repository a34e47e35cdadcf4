"""Schema revisions, oldest first: 0001 is the schema hub/db.py created before migrations existed."""
