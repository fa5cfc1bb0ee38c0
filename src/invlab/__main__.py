"""``python -m invlab`` is the ``invlab`` command."""

import sys

from invlab.cli.main import main

sys.exit(main())
