"""One module per subcommand; each exposes ``run(args, context, streams) -> int``.

``context`` carries settings and registry clients; ``streams`` (``streams.Streams``) is the
terminal: the only place a command writes to or asks whether it is on a terminal.
"""
