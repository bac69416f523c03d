"""`python -m zswapsim` runs the command line."""

from .cli import main

main()
