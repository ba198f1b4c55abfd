"""The `tap-fullstory` console script: stop handlers first, then the command line.

The handlers go in before the tap's heavier imports, so a SIGINT or SIGTERM during start-up
is recorded like any other and ends the run cleanly at its first check.
"""

from tap_fullstory.stopping import STOP


def main():
    """Entry point of the `tap-fullstory` console script."""
    STOP.install()
    from tap_fullstory.cli import main as cli_main

    cli_main()
