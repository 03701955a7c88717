"""``python -m agentnn.mlflow_integration.writer <journal_dir> [--once]``: the writer process."""

import sys

from agentnn.mlflow_integration.writer.daemon import main

sys.exit(main())
