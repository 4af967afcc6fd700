"""``python -m conveyor`` runs the CLI (used by `conveyor worker --concurrency N`)."""

from conveyor.cli.main import main

main()
