"""The `tap-fullstory-sandbox` console script: hold SIGINT and SIGTERM before anything else
is imported, so that a signal during start-up waits for the server's sigwait instead of
ending the process with a traceback."""

import signal


def main():
    """Entry point of the `tap-fullstory-sandbox` console script."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from tap_fullstory.sandbox.cli import main as cli_main

    cli_main()
