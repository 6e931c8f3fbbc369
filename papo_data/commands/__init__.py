"""One module per CLI verb: `add_parser(subparsers)` and the handler it registers."""
