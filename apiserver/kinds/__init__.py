"""One strategy module per served kind (defaulting, validation, printing)."""
