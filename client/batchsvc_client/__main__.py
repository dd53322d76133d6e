"""``python -m batchsvc_client``: the ``batchsvc`` command."""

import sys

from batchsvc_client.cli import main

sys.exit(main())
