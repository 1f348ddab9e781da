"""`python -m archive.extract FD LIMITS`: one extraction worker (archive.extract.worker)."""

import sys

from archive.extract.worker import main

main(sys.argv)
