"""Allow ``python -m mlship``."""

from mlship.cli.main import main

main()
