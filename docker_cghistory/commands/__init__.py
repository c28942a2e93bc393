"""One module per subcommand; each exposes ``run(args, context) -> int``."""
