"""`python -m strataflow` is `strata`."""

from strataflow.cli import main

main()
