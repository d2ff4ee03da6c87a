"""Allow ``python -m mlship``."""

from mlship.cli.main import main

# Worker processes (forkserver/spawn) import the parent's main module; they must not run the CLI.
if __name__ == "__main__":
    main()
