"""``python -m mocks serve ...``"""

import sys

from .cli import main

sys.exit(main())
