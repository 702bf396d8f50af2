"""NIR import and export (the graph every network can become)."""
