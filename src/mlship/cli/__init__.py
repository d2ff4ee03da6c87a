"""The ``mlship`` command line: one module per command group."""
