"""Placeholder until the tutorial notebook lands."""
print("notebooks: none yet")
