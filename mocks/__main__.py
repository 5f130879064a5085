"""``python -m mocks serve ...``"""

import sys

from mocks.cli import main

sys.exit(main())
