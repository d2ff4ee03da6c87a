"""The Spark engine: a data spec's sources, mapping, typing, checks and quarantine compiled to
Spark DataFrame operations, and batch scoring of a registered model on Spark executors.

Spark decides, for every row, its typed values and which checks it fails, and counts; the few
rows that need words (quarantined, warned, or shown as examples) are brought back and worded by
the local engine's own code, so reasons and reports read the same whichever engine ran.
"""
