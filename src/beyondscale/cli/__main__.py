"""`python -m beyondscale.cli`: the same command line as `beyondscale`."""

from beyondscale.cli import main

main()
