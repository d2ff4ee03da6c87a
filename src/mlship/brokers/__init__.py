"""Message brokers mlship consumes events from and writes to, behind one interface (``base.py``)."""
