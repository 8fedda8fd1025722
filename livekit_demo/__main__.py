"""`python -m livekit_demo` is the `livekit-demo` command."""

import sys

from .cli import main

sys.exit(main())
