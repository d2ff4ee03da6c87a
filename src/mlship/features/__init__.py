"""Features: preprocessing compiled into the scikit-learn Pipeline that ships with the model."""
