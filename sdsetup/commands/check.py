"""`sdsetup check` (placeholder until detect/ lands)."""
